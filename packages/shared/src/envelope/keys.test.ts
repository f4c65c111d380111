// Key ids, key formats, and RFC 8032's first test vector through node:crypto.
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, webcrypto } from 'node:crypto';
import { describe, it } from 'node:test';
import nacl from 'tweetnacl';
import {
  BASE64,
  generateSigningKey,
  keyIdOf,
  publicKeyFromRaw,
  rawFromPublicKey,
  signingKeyFromPem,
  trustedKeyFromBase64,
} from './keys.js';

// RFC 8032 §7.1, TEST 1.
const RFC_SECRET = Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex');
const RFC_PUBLIC = Buffer.from('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a', 'hex');
const RFC_SIGNATURE = Buffer.from(
  'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  'hex',
);
// `sha256sum` over RFC_PUBLIC's 32 bytes, first 16 hex digits, computed outside this code base.
const RFC_KEY_ID = '21fe31dfa154a261';
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

const rfcPrivateKey = () =>
  createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, RFC_SECRET]), format: 'der', type: 'pkcs8' });
const rfcPem = () => rfcPrivateKey().export({ format: 'pem', type: 'pkcs8' }).toString();

async function sha256Prefix(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await webcrypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join('');
}

describe('RFC 8032 test 1 through node:crypto', () => {
  it('derives the public key from the secret', () => {
    assert.deepStrictEqual(rawFromPublicKey(createPublicKey(rfcPrivateKey())), RFC_PUBLIC);
  });

  it('signs the empty message to the published signature', () => {
    assert.deepStrictEqual(sign(null, Buffer.alloc(0), rfcPrivateKey()), RFC_SIGNATURE);
    assert.equal(verify(null, Buffer.alloc(0), publicKeyFromRaw(RFC_PUBLIC), RFC_SIGNATURE), true);
  });

  it('agrees with tweetnacl on the same vector', () => {
    const pair = nacl.sign.keyPair.fromSeed(RFC_SECRET);
    assert.deepStrictEqual(Buffer.from(pair.publicKey), RFC_PUBLIC);
    assert.deepStrictEqual(Buffer.from(nacl.sign.detached(new Uint8Array(0), pair.secretKey)), RFC_SIGNATURE);
  });
});

describe('keyIdOf', () => {
  it('gives the known key id of the RFC 8032 test-1 key', () => {
    assert.equal(keyIdOf(RFC_PUBLIC), RFC_KEY_ID);
  });

  it('is 16 lowercase hex digits: the first 8 bytes of SHA-256 over the raw key', async () => {
    for (let i = 0; i < 20; i++) {
      const raw = nacl.sign.keyPair().publicKey;
      const id = keyIdOf(raw);
      assert.match(id, /^[0-9a-f]{16}$/);
      assert.equal(id, await sha256Prefix(raw));
    }
  });

  it('hashes the raw 32 bytes, not a DER or base64 form', async () => {
    const raw = Buffer.from(nacl.sign.keyPair().publicKey);
    const der = publicKeyFromRaw(raw).export({ format: 'der', type: 'spki' });
    assert.equal(keyIdOf(raw), await sha256Prefix(raw));
    assert.notEqual(keyIdOf(raw), await sha256Prefix(der));
    assert.notEqual(keyIdOf(raw), await sha256Prefix(Buffer.from(raw.toString('base64'))));
  });
});

describe('generateSigningKey', () => {
  it('makes distinct keys whose fields agree with each other', () => {
    const a = generateSigningKey();
    const b = generateSigningKey();
    assert.notEqual(a.keyId, b.keyId);
    for (const key of [a, b]) {
      const raw = Buffer.from(key.publicKey, 'base64');
      assert.equal(raw.length, 32);
      assert.match(key.publicKey, BASE64);
      assert.equal(key.keyId, keyIdOf(raw));
      assert.deepStrictEqual(rawFromPublicKey(createPublicKey(key.privateKey)), raw);
      assert.equal(key.privateKey.asymmetricKeyType, 'ed25519');
    }
  });

  it('writes a PKCS#8 PEM that reads back as the same key', () => {
    const key = generateSigningKey();
    assert.match(key.pem, /^-----BEGIN PRIVATE KEY-----\n/);
    const again = signingKeyFromPem(key.pem);
    assert.equal(again.keyId, key.keyId);
    assert.equal(again.publicKey, key.publicKey);
    const message = Buffer.from('same key');
    assert.deepStrictEqual(sign(null, message, again.privateKey), sign(null, message, key.privateKey));
  });

  it('makes the key tweetnacl would make from the same seed', () => {
    const key = generateSigningKey();
    const der = key.privateKey.export({ format: 'der', type: 'pkcs8' });
    assert.deepStrictEqual(der.subarray(0, PKCS8_PREFIX.length), PKCS8_PREFIX);
    const pair = nacl.sign.keyPair.fromSeed(der.subarray(PKCS8_PREFIX.length));
    assert.equal(Buffer.from(pair.publicKey).toString('base64'), key.publicKey);
  });
});

describe('signingKeyFromPem', () => {
  it('reads the RFC 8032 key with its public key and key id', () => {
    const key = signingKeyFromPem(rfcPem());
    assert.equal(key.publicKey, RFC_PUBLIC.toString('base64'));
    assert.equal(key.keyId, RFC_KEY_ID);
  });

  it('refuses keys of another type with a RangeError', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'pem', type: 'pkcs8' });
    assert.throws(() => signingKeyFromPem(rsa.toString()), RangeError);
    const x25519 = generateKeyPairSync('x25519').privateKey.export({ format: 'pem', type: 'pkcs8' });
    assert.throws(() => signingKeyFromPem(x25519.toString()), RangeError);
  });

  it('throws on a PEM that is not a private key', () => {
    assert.throws(() => signingKeyFromPem('not a pem'));
  });
});

describe('trustedKeyFromBase64', () => {
  it('reads a base64 public key with its key id', () => {
    const trusted = trustedKeyFromBase64(RFC_PUBLIC.toString('base64'));
    assert.equal(trusted.keyId, RFC_KEY_ID);
    assert.equal(trusted.publicKey, RFC_PUBLIC.toString('base64'));
    assert.equal(verify(null, Buffer.alloc(0), trusted.key, RFC_SIGNATURE), true);
  });

  it('refuses a key that is not 32 bytes', () => {
    assert.throws(() => trustedKeyFromBase64(Buffer.alloc(31).toString('base64')), RangeError);
    assert.throws(() => trustedKeyFromBase64(Buffer.alloc(33).toString('base64')), RangeError);
    assert.throws(() => trustedKeyFromBase64(''), RangeError);
  });

  it('refuses base64 that is not standard and padded', () => {
    const standard = RFC_PUBLIC.toString('base64');
    assert.throws(() => trustedKeyFromBase64(standard.replace(/=$/, '')), RangeError);
    assert.throws(() => trustedKeyFromBase64(RFC_PUBLIC.toString('base64url')), RangeError);
    assert.throws(() => trustedKeyFromBase64(` ${standard}`), RangeError);
    assert.throws(() => trustedKeyFromBase64(`${standard}\n`), RangeError);
  });
});

describe('publicKeyFromRaw and rawFromPublicKey', () => {
  it('round-trip the raw bytes', () => {
    const raw = Buffer.from(nacl.sign.keyPair().publicKey);
    assert.deepStrictEqual(rawFromPublicKey(publicKeyFromRaw(raw)), raw);
  });

  it('refuses a raw key of the wrong length', () => {
    assert.throws(() => publicKeyFromRaw(new Uint8Array(64)), RangeError);
  });
});

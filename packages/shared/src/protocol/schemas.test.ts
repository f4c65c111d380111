// Schema details not reached through parseCommand or parseEnvelope: /v1/info, endpoints, error bodies.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import nacl from 'tweetnacl';
import { keyIdOf } from '../envelope/keys.js';
import { ENDPOINTS, errorBodySchema, infoSchema } from './schemas.js';

const raw = Buffer.from(nacl.sign.keyPair().publicKey);
const info = {
  hostUuid: '6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6b',
  version: '0.1.0',
  publicKey: raw.toString('base64'),
  keyId: keyIdOf(raw),
  startedAt: 1764000000000,
};

describe('infoSchema', () => {
  it('accepts the /v1/info answer', () => {
    assert.deepStrictEqual(infoSchema.parse(info), info);
  });

  it('refuses a public key that is not exactly 32 bytes of standard base64', () => {
    const bad = [
      Buffer.alloc(31).toString('base64'),
      // 33 bytes are 44 characters too.
      Buffer.concat([raw, Buffer.alloc(1)]).toString('base64'),
      raw.toString('base64url'),
      info.publicKey.replace(/=$/, ''),
      // The same 32 bytes with a non-zero unused bit.
      `${info.publicKey.slice(0, 42)}${String.fromCharCode(info.publicKey.charCodeAt(42) + 1)}=`,
    ];
    for (const publicKey of bad) {
      assert.notEqual(publicKey, info.publicKey);
      assert.equal(infoSchema.safeParse({ ...info, publicKey }).success, false, publicKey);
    }
  });

  it('refuses unknown fields, an uppercase keyId and a fractional startedAt', () => {
    assert.equal(infoSchema.safeParse({ ...info, extra: 1 }).success, false);
    assert.equal(
      infoSchema.safeParse({ ...info, keyId: info.keyId.toUpperCase().replace(/^[0-9]/, 'A') }).success,
      false,
    );
    assert.equal(infoSchema.safeParse({ ...info, startedAt: 1.5 }).success, false);
  });
});

describe('ENDPOINTS', () => {
  it('names the paths of the design', () => {
    assert.deepStrictEqual(
      { ...ENDPOINTS },
      {
        'files.apply': '/v1/files/apply',
        'files.read': '/v1/files/read',
        'files.list': '/v1/files/list',
        'files.stat': '/v1/files/stat',
        'files.busy': '/v1/files/busy',
      },
    );
  });
});

describe('errorBodySchema', () => {
  it('accepts { error: { code, message } } and nothing more', () => {
    const body = { error: { code: 'expired', message: 'too old' } };
    assert.deepStrictEqual(errorBodySchema.parse(body), body);
    assert.equal(errorBodySchema.safeParse({ ...body, extra: 1 }).success, false);
    assert.equal(errorBodySchema.safeParse({ error: { ...body.error, stack: '' } }).success, false);
  });
});

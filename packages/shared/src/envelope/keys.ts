// Ed25519 keys: raw 32-byte public keys on the wire, node:crypto KeyObjects in memory, PKCS#8 PEM on disk.
import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import nacl from 'tweetnacl';

// DER prefixes that wrap a raw Ed25519 key (RFC 8410) so node:crypto can import it.
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export const PUBLIC_KEY_BYTES = 32;

/** hex of the first 8 bytes of SHA-256 over the 32 raw public-key bytes */
export function keyIdOf(publicKey: Uint8Array): string {
  return createHash('sha256').update(publicKey).digest().subarray(0, 8).toString('hex');
}

export function publicKeyFromRaw(raw: Uint8Array): KeyObject {
  if (raw.length !== PUBLIC_KEY_BYTES)
    throw new RangeError(`an Ed25519 public key has 32 bytes, not ${String(raw.length)}`);
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

export function rawFromPublicKey(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length);
}

export interface SigningKey {
  readonly keyId: string;
  readonly privateKey: KeyObject;
  /** base64 of the 32 raw bytes, as it travels and as peers configure it */
  readonly publicKey: string;
}

export interface GeneratedKey extends SigningKey {
  /** PKCS#8 PEM, the format `openssl genpkey -algorithm ed25519` writes */
  readonly pem: string;
}

/** A new key pair; tweetnacl makes it from its own CSPRNG source, node:crypto signs with it. */
export function generateSigningKey(): GeneratedKey {
  const pair = nacl.sign.keyPair();
  const seed = Buffer.from(pair.secretKey.subarray(0, 32));
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  seed.fill(0);
  return { ...signingKeyFromPrivate(privateKey), pem };
}

/** Throws a RangeError when the PEM is not an Ed25519 private key. */
export function signingKeyFromPem(pem: string): SigningKey {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: pem, format: 'pem' });
  } catch (error) {
    throw new RangeError('not a PEM private key', { cause: error });
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new RangeError(`the key is ${privateKey.asymmetricKeyType ?? 'not asymmetric'}, not ed25519`);
  }
  return signingKeyFromPrivate(privateKey);
}

function signingKeyFromPrivate(privateKey: KeyObject): SigningKey {
  const raw = rawFromPublicKey(createPublicKey(privateKey));
  return { keyId: keyIdOf(raw), privateKey, publicKey: raw.toString('base64') };
}

export interface TrustedKey {
  readonly keyId: string;
  readonly key: KeyObject;
  readonly publicKey: string;
}

/** Parses a base64 public key; throws a RangeError naming what is wrong. */
export function trustedKeyFromBase64(publicKey: string): TrustedKey {
  if (!BASE64.test(publicKey)) throw new RangeError('a public key is standard padded base64');
  const raw = Buffer.from(publicKey, 'base64');
  return { keyId: keyIdOf(raw), key: publicKeyFromRaw(raw), publicKey };
}

/** Standard base64 (RFC 4648 §4), padded. */
export const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

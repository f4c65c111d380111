// The TLS certificate of an Ed25519 signing key: self-signed, and derived from the key alone. Ed25519 signatures are
// deterministic, so the same key gives the same certificate bytes at every start: nothing to store, renew or expire.
import { createHash, createPublicKey, sign, X509Certificate } from 'node:crypto';
import { keyIdOf, rawFromPublicKey, type SigningKey } from '../envelope/keys.js';
import { err, ok, type Result } from '../result.js';
import {
  bitString,
  booleanTrue,
  explicit,
  objectIdentifier,
  octetString,
  sequence,
  set,
  time,
  toPem,
  unsignedInteger,
  utf8String,
} from './der.js';

const ED25519 = sequence(objectIdentifier('1.3.101.112'));
const NOT_BEFORE = '20000101000000';
const NOT_AFTER = '99991231235959';
const ED25519_SIGNATURE_BYTES = 64;

/** What a TLS server or client presents for `key`: its certificate and private key, both PEM. */
export interface TlsIdentity {
  readonly cert: string;
  readonly key: string;
}

/**
 * The certificate of `key`: X.509 v3, serial = the first 16 bytes of SHA-256 over the SPKI (top bit cleared), issuer
 * = subject = CN "hostfiles <keyId>", valid 2000 to 9999, basicConstraints CA (it is its own trust anchor: a pinning
 * peer uses it as its only CA), extKeyUsage serverAuth and clientAuth. PEM.
 */
export function certificateFor(key: SigningKey): string {
  const tbs = tbsCertificate(createPublicKey(key.privateKey).export({ format: 'der', type: 'spki' }));
  return toPem('CERTIFICATE', assemble(tbs, sign(null, tbs, key.privateKey)));
}

export function tlsIdentity(key: SigningKey): TlsIdentity {
  return {
    cert: certificateFor(key),
    key: key.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  };
}

/** The certificate's Ed25519 public key as base64 of its 32 raw bytes; undefined for any other kind of key. */
export function certificatePublicKey(certificate: X509Certificate): string | undefined {
  const key = certificate.publicKey;
  return key.asymmetricKeyType === 'ed25519' ? rawFromPublicKey(key).toString('base64') : undefined;
}

/**
 * Checks that `pem` is exactly the certificate `certificateFor` makes for the Ed25519 public key `publicKey` (base64):
 * same bytes but for the signature, and the signature verifies. A peer pinning it uses it as its only CA, so nothing
 * else is accepted: no other names, validity or constraints than the key's own certificate has.
 */
export function checkCertificate(pem: string, publicKey: string): Result<X509Certificate, string> {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(pem);
  } catch {
    return err('not an X.509 certificate');
  }
  const presented = certificatePublicKey(certificate);
  if (presented === undefined) return err('its key is not an Ed25519 key');
  if (presented !== publicKey) return err('its key is not the expected key');
  const der = certificate.raw;
  const spki = certificate.publicKey.export({ format: 'der', type: 'spki' });
  const expected = assemble(tbsCertificate(spki), der.subarray(der.length - ED25519_SIGNATURE_BYTES));
  if (!expected.equals(der))
    return err("it is not the agent key's own certificate (other fields than hostfiles makes)");
  if (!certificate.verify(certificate.publicKey)) return err('its self-signature does not verify');
  return ok(certificate);
}

function assemble(tbs: Buffer, signature: Uint8Array): Buffer {
  return sequence(tbs, ED25519, bitString(signature));
}

function tbsCertificate(spki: Buffer): Buffer {
  const serial = createHash('sha256').update(spki).digest().subarray(0, 16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  const name = sequence(
    set(sequence(objectIdentifier('2.5.4.3'), utf8String(`hostfiles ${keyIdOf(rawOfSpki(spki))}`))),
  );
  const basicConstraints = sequence(objectIdentifier('2.5.29.19'), booleanTrue(), octetString(sequence(booleanTrue())));
  const extendedKeyUsage = sequence(
    objectIdentifier('2.5.29.37'),
    octetString(sequence(objectIdentifier('1.3.6.1.5.5.7.3.1'), objectIdentifier('1.3.6.1.5.5.7.3.2'))),
  );
  return sequence(
    explicit(0, unsignedInteger(Buffer.of(2))),
    unsignedInteger(serial),
    ED25519,
    name,
    sequence(time(NOT_BEFORE), time(NOT_AFTER)),
    name,
    spki,
    explicit(3, sequence(basicConstraints, extendedKeyUsage)),
  );
}

/** An Ed25519 SPKI is a fixed 12-byte prefix and the 32 raw bytes. */
const rawOfSpki = (spki: Buffer): Buffer => spki.subarray(spki.length - 32);

// Signing and verifying envelopes. The signature covers a context string and the payload bytes as sent.
import { sign, verify, type KeyObject } from 'node:crypto';
import { protocolError, type ProtocolError } from '../errors.js';
import { err, ok, type Result } from '../result.js';
import type { Envelope } from '../protocol/schemas.js';
import { truncate } from '../util/echo.js';
import type { SigningKey } from './keys.js';
import { scanEnvelope } from './scan-envelope.js';

export const COMMAND_CONTEXT = 'hostfiles/v1/command\n';
export const ANSWER_CONTEXT = 'hostfiles/v1/answer\n';
export type SignatureContext = typeof COMMAND_CONTEXT | typeof ANSWER_CONTEXT;

const CONTEXT_BYTES: Record<SignatureContext, Buffer> = {
  [COMMAND_CONTEXT]: Buffer.from(COMMAND_CONTEXT, 'utf8'),
  [ANSWER_CONTEXT]: Buffer.from(ANSWER_CONTEXT, 'utf8'),
};

export function signedBytes(context: SignatureContext, payload: Uint8Array): Buffer {
  return Buffer.concat([CONTEXT_BYTES[context], payload]);
}

/** Signs a payload (an object is serialized once; those exact bytes are what is signed and sent). */
export function signEnvelope(context: SignatureContext, payload: unknown, key: SigningKey): Envelope {
  const bytes = payload instanceof Uint8Array ? payload : Buffer.from(JSON.stringify(payload), 'utf8');
  const signature = sign(null, signedBytes(context, bytes), key.privateKey);
  return {
    keyId: key.keyId,
    payload: Buffer.from(bytes).toString('base64'),
    signature: signature.toString('base64'),
  };
}

/**
 * Parses a raw request or answer body into an envelope: strict JSON, the envelope's exact shape, refused at the first
 * member that does not belong (see scan-envelope.ts) rather than after building whatever the body holds.
 */
export function parseEnvelope(body: string): Result<Envelope, ProtocolError> {
  const scanned = scanEnvelope(body);
  return scanned.ok ? scanned : err(protocolError('bad_request', `not an envelope: ${scanned.error}`));
}

export type KeyLookup = (keyId: string) => KeyObject | undefined;

/**
 * Verifies an envelope and returns the payload bytes, which nobody may parse before this succeeds.
 * node:crypto refuses non-canonical signatures (S ≥ L), which tweetnacl would accept.
 */
export function verifyEnvelope(
  envelope: Envelope,
  context: SignatureContext,
  lookup: KeyLookup,
): Result<Buffer, ProtocolError> {
  const key = lookup(envelope.keyId);
  if (key === undefined) {
    return err(protocolError('unknown_key', `no trusted key has keyId ${truncate(envelope.keyId)}`));
  }
  // The payload is decoded straight after the context, into the one buffer verify() reads: no second copy of it.
  const prefix = CONTEXT_BYTES[context];
  const signed = Buffer.allocUnsafe(prefix.length + Buffer.byteLength(envelope.payload, 'base64'));
  prefix.copy(signed);
  const end = prefix.length + signed.write(envelope.payload, prefix.length, 'base64');
  const payload = signed.subarray(prefix.length, end);
  const signature = Buffer.from(envelope.signature, 'base64');
  let valid = false;
  try {
    valid = verify(null, signed.subarray(0, end), key, signature);
  } catch (error) {
    // OpenSSL throws on malformed signatures instead of answering false: both are "does not verify".
    return err(protocolError('bad_signature', `the signature does not verify (${String(error)})`));
  }
  return valid ? ok(payload) : err(protocolError('bad_signature', 'the signature does not verify'));
}

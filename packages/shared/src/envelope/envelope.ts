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

/** Gives a buffer of at least `bytes` that verifyEnvelope may use until it returns (and the next call uses again). */
export type Scratch = (bytes: number) => Buffer;

/**
 * Verifies an envelope and returns the payload bytes, which nobody may parse before this succeeds.
 * node:crypto refuses non-canonical signatures (S ≥ L), which tweetnacl would accept. With `scratch`, an envelope that
 * does not verify leaves no buffer behind (the agent's defence against floods of them); a payload that verifies is
 * copied out of it.
 */
export function verifyEnvelope(
  envelope: Envelope,
  context: SignatureContext,
  lookup: KeyLookup,
  scratch?: Scratch,
): Result<Buffer, ProtocolError> {
  return withVerifiedPayload(envelope, context, lookup, scratch, (payload) =>
    scratch === undefined ? payload : Buffer.from(payload),
  );
}

/**
 * verifyEnvelope, handing `use` the payload as it lies in `scratch`, with no copy: `use` must be done with it when it
 * returns (the next call decodes into the same buffer). The agent parses and hashes a command's payload there; a
 * batch of 100 writes is ~1.4 MB, a copy of which cost it more than the parse.
 */
export function withVerifiedPayload<T>(
  envelope: Envelope,
  context: SignatureContext,
  lookup: KeyLookup,
  scratch: Scratch | undefined,
  use: (payload: Buffer) => T,
): Result<T, ProtocolError> {
  const key = lookup(envelope.keyId);
  if (key === undefined) {
    return err(protocolError('unknown_key', `no trusted key has keyId ${truncate(envelope.keyId)}`));
  }
  // The payload is decoded straight after the context, into the one buffer verify() reads: no second copy of it.
  const prefix = CONTEXT_BYTES[context];
  const size = prefix.length + Buffer.byteLength(envelope.payload, 'base64');
  const signed = scratch === undefined ? Buffer.allocUnsafe(size) : scratch(size);
  prefix.copy(signed);
  const end = prefix.length + signed.write(envelope.payload, prefix.length, 'base64');
  const signature = Buffer.from(envelope.signature, 'base64');
  let valid = false;
  try {
    valid = verify(null, signed.subarray(0, end), key, signature);
  } catch (error) {
    // OpenSSL throws on malformed signatures instead of answering false: both are "does not verify".
    return err(protocolError('bad_signature', `the signature does not verify (${String(error)})`));
  }
  if (!valid) return err(protocolError('bad_signature', 'the signature does not verify'));
  return ok(use(signed.subarray(prefix.length, end)));
}

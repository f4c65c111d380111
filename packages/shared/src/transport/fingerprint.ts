// Key fingerprints, and what an operator may pass as the key they expect an agent to hold.
import { createHash } from 'node:crypto';
import { BASE64, PUBLIC_KEY_BYTES, trustedKeyFromBase64 } from '../envelope/keys.js';
import { err, ok, type Result } from '../result.js';

const FINGERPRINT = /^sha256:[0-9a-f]{64}$/;

/** `sha256:` and the hex SHA-256 of the key's 32 raw bytes (`publicKey` is their base64). */
export function keyFingerprint(publicKey: string): string {
  return `sha256:${createHash('sha256').update(Buffer.from(publicKey, 'base64')).digest('hex')}`;
}

/** The key an operator expects a host to have, by its fingerprint. */
export interface ExpectedKey {
  readonly fingerprint: string;
}

/**
 * The agent's base64 public key or its full `sha256:<64 hex>` fingerprint. A 16-hex keyId is refused: 64 bits are
 * within reach of a forger searching for a key with the same id, so it identifies a key but cannot pin one.
 */
export function parseExpectedKey(text: string): Result<ExpectedKey, string> {
  const value = text.trim();
  if (FINGERPRINT.test(value.toLowerCase())) return ok({ fingerprint: value.toLowerCase() });
  if (/^[0-9a-f]{16}$/i.test(value)) {
    return err(
      `${value} is a keyId: 64 bits are too few to pin a key (a forger can search for a key with that id); ` +
        'give the base64 public key or the full sha256:… fingerprint `hostfiles-agent info` prints',
    );
  }
  if (BASE64.test(value) && Buffer.from(value, 'base64').length === PUBLIC_KEY_BYTES) {
    return ok({ fingerprint: keyFingerprint(trustedKeyFromBase64(value).publicKey) });
  }
  return err('an expected key is the base64 Ed25519 public key or its sha256:<64 hex digits> fingerprint');
}

export const isExpectedKey = (expected: ExpectedKey, publicKey: string): boolean =>
  keyFingerprint(publicKey) === expected.fingerprint;

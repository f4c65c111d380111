// The controller's signing key on disk: PKCS#8 PEM, mode 0600, created once and never overwritten.
import { writeFileSync } from 'node:fs';
import { generateSigningKey, signingKeyFromPem, type SigningKey } from '@hostfiles/shared';
import { badInput, CliError } from './errors.js';
import { readOwnFile } from './own-file.js';

const codeOf = (error: unknown): string =>
  (error as NodeJS.ErrnoException | undefined)?.code ?? (error instanceof Error ? error.message : String(error));

/**
 * Reads and checks the key; every problem is a CliError that says what to do: exit 1 for a key that is not there,
 * 2 for one that is there but unusable (own-file.ts).
 */
export function loadControllerKey(path: string): SigningKey {
  const pem = readOwnFile(path, {
    what: 'controller key',
    secret: true,
    whenMissing: 'run `hostfiles init`, or name the key with --key',
  });
  try {
    return signingKeyFromPem(pem);
  } catch (error) {
    throw badInput(`${path} is not an Ed25519 private key in PEM: ${(error as Error).message}`);
  }
}

/** The key at `path`, made now (0600, exclusive create) when there is none; an existing one is kept as it is. */
export function ensureControllerKey(path: string): { readonly key: SigningKey; readonly created: boolean } {
  const key = generateSigningKey();
  try {
    writeFileSync(path, key.pem, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if (codeOf(error) === 'EEXIST') return { key: loadControllerKey(path), created: false };
    throw new CliError(`cannot create the controller key ${path}: ${codeOf(error)}`);
  }
  return { key, created: true };
}

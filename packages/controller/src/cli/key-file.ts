// The controller's signing key on disk: PKCS#8 PEM, mode 0600, created once and never overwritten.
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { generateSigningKey, signingKeyFromPem, type SigningKey } from '@hostfiles/shared';
import { badInput, CliError } from './errors.js';

const codeOf = (error: unknown): string =>
  (error as NodeJS.ErrnoException | undefined)?.code ?? (error instanceof Error ? error.message : String(error));

/** Errors of a key path that is there but names nothing readable as a file. */
const UNUSABLE = new Set(['EISDIR', 'EACCES', 'EPERM', 'ELOOP', 'ENOTDIR']);

/**
 * Reads and checks the key; every problem is a CliError that says what to do: exit 1 for a key that is not there,
 * 2 for one that is there but unusable.
 */
export function loadControllerKey(path: string): SigningKey {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (error) {
    const code = codeOf(error);
    if (code === 'ENOENT') {
      throw new CliError(`no controller key at ${path}: run \`hostfiles init\`, or name the key with --key`);
    }
    // There, but not a file this user can read: the path handed in is wrong (bad input), not the machine.
    if (UNUSABLE.has(code)) throw badInput(`cannot read the controller key ${path}: ${code}`);
    throw new CliError(`cannot read the controller key ${path}: ${code}`);
  }
  if ((statSync(path).mode & 0o077) !== 0) {
    throw badInput(`the controller key ${path} is readable by others than its owner: chmod 600 it`);
  }
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

// The files `hostfiles serve` reads at start and again on SIGHUP: the bearer token and the TLS certificate and key.
// Loaded by serve's run only (node:crypto and node:fs): the command table and --help load none of it.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import type { TlsIdentity } from '@hostfiles/shared';
import { badInput, CliError, isCliError, UsageError } from './errors.js';
import { MIN_TOKEN_LENGTH } from './serve.js';

const HINT = 'see `hostfiles serve --help`';

/** The API's certificate and key, both or neither; the key file must be the owner's alone, as the token's. */
export function loadTls(certPath: string | undefined, keyPath: string | undefined): TlsIdentity | undefined {
  if (certPath === undefined && keyPath === undefined) return undefined;
  if (certPath === undefined || keyPath === undefined)
    throw new UsageError('--tls-cert and --tls-key go together', HINT);
  const cert = readOwnFile(certPath, 'TLS certificate', false);
  const key = readOwnFile(keyPath, 'TLS key', true);
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch {
    throw badInput(`${certPath} is not a PEM certificate`);
  }
  try {
    if (!certificate.checkPrivateKey(createPrivateKey(key))) {
      throw badInput(`the key in ${keyPath} is not the key of the certificate in ${certPath}`);
    }
  } catch (error) {
    if (isCliError(error)) throw error;
    throw badInput(`${keyPath} is not a PEM private key`);
  }
  return { cert, key };
}

/** A file's text, read from the descriptor that was checked (no swap in between); `secret`: the owner's alone. */
function readOwnFile(path: string, what: string, secret: boolean): string {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw badInput(`the ${what} file ${path} is not a file`);
    if (secret && (stat.mode & 0o077) !== 0) {
      throw badInput(`the ${what} file ${path} is open to group or others: chmod 600 it`);
    }
    return readFileSync(fd, 'utf8');
  } catch (error) {
    if (isCliError(error)) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new CliError(
      code === 'ENOENT' ? `no ${what} file at ${path}` : `cannot read the ${what} file ${path}: ${code}`,
    );
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The bearer token: its file must be the owner's alone, checked on the very file read (no swap in between). */
export function loadToken(path: string): string {
  const text = readOwnFile(path, 'token', true);
  const token = text.trim();
  if (token === '') throw badInput(`the token file ${path} is empty`);
  if (!/^[A-Za-z0-9\-._~+/]+=*$/.test(token)) {
    throw badInput(`the token file ${path} must hold one bearer token: letters, digits and -._~+/ only`);
  }
  if (token.length < MIN_TOKEN_LENGTH) {
    throw badInput(
      `the token in ${path} is shorter than ${MIN_TOKEN_LENGTH} characters: make one with \`openssl rand -base64 32\``,
    );
  }
  return token;
}

// The files `hostfiles serve` reads at start and again on SIGHUP: the bearer token and the TLS certificate and key.
// Loaded by serve's run only (node:crypto and node:fs): the command table and --help load none of it.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { TlsIdentity } from '@hostfiles/shared';
import { badInput, isCliError, UsageError } from './errors.js';
import { readOwnFile } from './own-file.js';
import { MIN_TOKEN_LENGTH } from './serve.js';

const HINT = 'see `hostfiles serve --help`';

/** The API's certificate and key, both or neither; the key file must be the owner's alone, as the token's. */
export function loadTls(certPath: string | undefined, keyPath: string | undefined): TlsIdentity | undefined {
  if (certPath === undefined && keyPath === undefined) return undefined;
  if (certPath === undefined || keyPath === undefined)
    throw new UsageError('--tls-cert and --tls-key go together', HINT);
  const cert = readOwnFile(certPath, { what: 'TLS certificate file', secret: false });
  const key = readOwnFile(keyPath, { what: 'TLS key file', secret: true });
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

/** The bearer token: its file must be the owner's alone, checked on the very file read (no swap in between). */
export function loadToken(path: string): string {
  const text = readOwnFile(path, { what: 'token file', secret: true });
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

// How the agent is reached: HTTPS with its own key's certificate, and only by clients presenting a trusted
// controller key's certificate (mutual TLS), or plain HTTP where the config allows it.
import type { ServerOptions } from 'node:https';
import type { Server, TLSSocket } from 'node:tls';
import {
  certificatePublicKey,
  keyIdOf,
  tlsIdentity,
  type LogFields,
  type Logger,
  type SigningKey,
  type TrustedKey,
} from '@hostfiles/shared';
import type { ClientAuth } from './config.js';
import type { AgentEvent } from './deps.js';

/** TLS 1.3 only, the agent's own certificate; a client certificate asked for but checked by `refuseUntrustedClients`. */
export function tlsServerOptions(signer: SigningKey, clientAuth: ClientAuth): ServerOptions {
  return {
    ...tlsIdentity(signer),
    minVersion: 'TLSv1.3',
    // The handshake proves the client holds the key of the certificate it presents; whether that key is trusted is
    // ours to say (no CA): refuseUntrustedClients does, before any byte of HTTP is read.
    requestCert: clientAuth === 'required',
    rejectUnauthorized: false,
  };
}

/**
 * Closes every connection whose client certificate is not one of `trustedKeys`' own, as soon as its handshake ends:
 * ahead of the HTTP layer, in the same tick, so an unauthenticated client never gets a request (or a byte of body)
 * read, buffered or answered. `onTrusted` hears of each connection it lets through.
 */
export function refuseUntrustedClients(
  server: Server,
  trustedKeys: ReadonlyMap<string, TrustedKey>,
  logger: Logger<AgentEvent>,
  now: () => number,
  onTrusted: (socket: TLSSocket) => void = () => undefined,
): void {
  const report = rateLimited(logger, now);
  server.prependListener('secureConnection', (socket: TLSSocket) => {
    const certificate = socket.getPeerX509Certificate();
    const publicKey = certificate === undefined ? undefined : certificatePublicKey(certificate);
    if (publicKey !== undefined) {
      const keyId = keyIdOf(Buffer.from(publicKey, 'base64'));
      if (trustedKeys.get(keyId)?.publicKey === publicKey) {
        onTrusted(socket);
        return;
      }
      report({ reason: 'untrusted_key', keyId, remote: socket.remoteAddress });
    } else {
      report({ reason: certificate === undefined ? 'no_certificate' : 'not_ed25519', remote: socket.remoteAddress });
    }
    socket.destroy();
  });
}

/**
 * At most one `client_refused` line a second per reason, with how many were left out before it: anyone can knock,
 * and must not flush the journal of applied ops by knocking.
 */
function rateLimited(
  logger: Logger<AgentEvent>,
  now: () => number,
): (fields: LogFields & { readonly reason: string }) => void {
  const reasons = new Map<string, { last: number; suppressed: number }>();
  return (fields) => {
    const at = now();
    const seen = reasons.get(fields.reason);
    if (seen !== undefined && at - seen.last < 1000) {
      seen.suppressed++;
      return;
    }
    logger.warn('client_refused', { ...fields, suppressed: seen?.suppressed ?? 0 });
    reasons.set(fields.reason, { last: at, suppressed: 0 });
  };
}

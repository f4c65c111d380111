// TLS to agents: each connection trusts exactly one certificate — the host's pinned one, as its only CA — and
// presents the controller's own (mutual TLS: agents close connections from keys they do not trust).
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { connect, type PeerCertificate } from 'node:tls';
import { certificatePublicKey, keyFingerprint, type TlsIdentity } from '@hostfiles/shared';
import { Agent } from 'undici';

/** The code of the error a peer gets when its certificate chains to the pinned one but holds another key. */
export const PIN_MISMATCH = 'ERR_HOSTFILES_PIN_MISMATCH';

/** The connection options every agent connection uses: TLS 1.3, the controller's certificate. */
const base = (client: TlsIdentity) => ({ cert: client.cert, key: client.key, minVersion: 'TLSv1.3' as const });

/**
 * A dispatcher for one host: the pinned certificate is the only CA (Node checks the server's identity only after
 * the chain verified), and the identity check compares keys, not names: agents are often reached by IP, and the
 * pin is the key.
 */
export function createPinnedDispatcher(certificate: string, client: TlsIdentity): Agent {
  const pinned = certificatePublicKey(new X509Certificate(certificate));
  if (pinned === undefined) throw new RangeError('a pinned certificate holds an Ed25519 key');
  return new Agent({
    connect: {
      ...base(client),
      ca: certificate,
      checkServerIdentity: (_host: string, peer: PeerCertificate) => {
        const presented = certificatePublicKey(new X509Certificate(peer.raw));
        if (presented === pinned) return undefined;
        const message =
          `the agent presents key ${presented === undefined ? 'not Ed25519' : keyFingerprint(presented)}, ` +
          `not the pinned ${keyFingerprint(pinned)}`;
        return Object.assign(new Error(message), { code: PIN_MISMATCH });
      },
    },
  });
}

/**
 * The certificate the TLS server at `url` presents, as PEM, unverified: the one connection made without a pin,
 * to learn what to check before pinning it. It carries no HTTP: the handshake ends it.
 */
export function fetchCertificate(url: URL, client: TlsIdentity, timeoutMs: number): Promise<string> {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return new Promise((resolve, reject) => {
    const socket = connect({
      ...base(client),
      host,
      port: Number(url.port === '' ? 443 : url.port),
      ...(isIP(host) === 0 ? { servername: host } : {}),
      // Read, not trusted: the caller checks it against the key the operator expects before pinning it.
      rejectUnauthorized: false,
    });
    socket.setTimeout(timeoutMs, () => {
      socket.destroy(Object.assign(new Error('no TLS handshake in time'), { code: 'ETIMEDOUT' }));
    });
    socket.once('secureConnect', () => {
      const certificate = socket.getPeerX509Certificate();
      socket.destroy();
      if (certificate === undefined) reject(new Error('the server presented no certificate'));
      else resolve(certificate.toString());
    });
    socket.once('error', reject);
  });
}

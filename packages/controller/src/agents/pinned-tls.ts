// TLS to agents: each connection trusts exactly one certificate — the host's pinned one, as its only CA — and
// presents the controller's own (mutual TLS: agents close connections from keys they do not trust).
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { connect, type PeerCertificate } from 'node:tls';
import { certificatePublicKey, keyFingerprint, type TlsIdentity } from '@hostfiles/shared';
import { Agent } from 'undici';

/** The code of the error a peer gets when its certificate chains to the pinned one but holds another key. */
export const PIN_MISMATCH = 'ERR_HOSTFILES_PIN_MISMATCH';

/**
 * The most connections the controller opens to one agent: its commands past them wait their turn. An agent closes
 * connections past its `connectionsPerAddress` (32 by default) as they open.
 */
export const CONNECTIONS_PER_AGENT = 16;

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
    connections: CONNECTIONS_PER_AGENT,
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
 * A dispatcher for one host without a pinned certificate: plain HTTP (loopback, or where explicitly allowed), or an
 * https:// URL of a host added before TLS (checked against the system's CAs).
 */
export function createUnpinnedDispatcher(): Agent {
  return new Agent({ connections: CONNECTIONS_PER_AGENT });
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

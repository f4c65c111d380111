// The bench's one transport switch: the agent and the baseline are served the same way, and reached by the same
// client code.
import { Agent, createServer, request, type RequestListener, type Server } from 'node:http';
import { Agent as HttpsAgent, createServer as createHttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { rawFromPublicKey, signingKeyFromPem, tlsIdentity, trustedKeyFromBase64 } from '@hostfiles/shared';

/**
 * `http`: plain HTTP on loopback. `https`: mutual TLS as the agent serves it by default (TLS 1.3, the server's
 * certificate derived from its Ed25519 key and pinned by the client as its only CA, the client's certificate derived
 * from the controller's key and checked against the trusted keys at each handshake) — on both sides.
 */
export type Transport = 'http' | 'https';

export const TRANSPORTS: readonly Transport[] = ['http', 'https'];

/** The keys both sides of a TLS transport need, as PKCS#8 PEM: the server's (the agent's key) and the client's. */
export interface Identities {
  readonly serverKeyPem: string;
  readonly clientKeyPem: string;
}

export interface Client {
  /** POSTs `body`; resolves once the whole 200 answer is read, rejects on any other status. */
  /** the answer's body; rejects on any status but 200 */
  post(url: string, body: Buffer, headers?: Readonly<Record<string, string>>): Promise<Buffer>;
  close(): void;
}

/** Everything that differs between transports; a table, so a transport missing from it is a type error. */
export interface TransportKit {
  readonly scheme: string;
  /** What the agent's `listen` needs, beside host and port, to serve this transport. */
  readonly agentListen: Readonly<Record<string, unknown>>;
  /** The baseline's server; it listens where the caller says. */
  createServer(listener: RequestListener, ids: Identities): Server;
  /** A keep-alive client with up to `connections` sockets: one per concurrent caller, reused across requests. */
  createClient(connections: number, ids: Identities): Client;
}

const KITS: Readonly<Record<Transport, TransportKit>> = {
  http: {
    scheme: 'http',
    agentListen: { tls: false },
    createServer: (listener) => createServer({ keepAlive: true }, listener),
    createClient: (connections) => clientOver(new Agent({ keepAlive: true, maxSockets: connections })),
  },
  https: {
    scheme: 'https',
    agentListen: { tls: true, clientAuth: 'required' },
    createServer: (listener, ids) => {
      const server = createHttpsServer(
        {
          ...tlsIdentity(signingKeyFromPem(ids.serverKeyPem)),
          minVersion: 'TLSv1.3',
          requestCert: true,
          rejectUnauthorized: false,
          keepAlive: true,
        },
        listener,
      );
      // As the agent: a client whose certificate is not for the trusted key is dropped before any HTTP.
      const trusted = trustedKeyFromBase64(signingKeyFromPem(ids.clientKeyPem).publicKey).publicKey;
      server.on('secureConnection', (socket: TLSSocket) => {
        const peer = socket.getPeerX509Certificate();
        const raw =
          peer === undefined ? '' : rawFromPublicKey(new X509Certificate(peer.raw).publicKey).toString('base64');
        if (raw !== trusted) socket.destroy();
      });
      return server;
    },
    createClient: (connections, ids) => {
      const server = tlsIdentity(signingKeyFromPem(ids.serverKeyPem));
      return clientOver(
        new HttpsAgent({
          keepAlive: true,
          maxSockets: connections,
          ...tlsIdentity(signingKeyFromPem(ids.clientKeyPem)),
          ca: server.cert,
          minVersion: 'TLSv1.3',
          // The pinned certificate is the only CA; agents are reached by address, not by name.
          checkServerIdentity: () => undefined,
        }),
      );
    },
  },
};

export const transportKit = (transport: Transport): TransportKit => KITS[transport];

/**
 * A benchmark server's start and stop (the baseline's, the floor's): listens on a free loopback port and says which on
 * stdout, as a line of JSON (main.ts waits for it); on SIGTERM closes every connection, then runs `stopped`.
 */
export function listenAndReport(server: Server, stopped: () => void = () => undefined): void {
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    if (address !== null && typeof address === 'object') {
      process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
    }
  });
  process.once('SIGTERM', () => {
    server.close();
    server.closeAllConnections();
    stopped();
  });
}

function clientOver(agent: Agent | HttpsAgent): Client {
  return {
    post: (url, body, headers = {}) =>
      new Promise((resolve, reject) => {
        const req = request(
          url,
          {
            method: 'POST',
            agent,
            headers: { 'content-type': 'application/json', 'content-length': String(body.length), ...headers },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (chunk: Buffer) => chunks.push(chunk));
            res.on('error', reject);
            res.on('end', () => {
              if (res.statusCode === 200) resolve(Buffer.concat(chunks));
              else
                reject(new Error(`${url}: ${res.statusCode} ${Buffer.concat(chunks).toString('utf8').slice(0, 300)}`));
            });
          },
        );
        req.on('error', reject);
        req.end(body);
      }),
    close: () => {
      agent.destroy();
    },
  };
}

// The bench's one transport switch: the agent and the baseline are served the same way, and reached by the same
// client code.
import { Agent, createServer, request, type RequestListener, type Server } from 'node:http';

/**
 * `http`: plain HTTP on loopback. `https` (mutual TLS, the agent's certificate bound to its Ed25519 key) joins this
 * union, and KITS, once the agent serves it: its agent config keys, the baseline's `node:https` server with the same
 * certificate and client-certificate requirement, and an `https.Agent` holding the client certificate and the
 * pinned server certificate as `ca`.
 */
export type Transport = 'http';

export const TRANSPORTS: readonly Transport[] = ['http'];

export interface Client {
  /** POSTs `body`; resolves once the whole 200 answer is read, rejects on any other status. */
  post(url: string, body: Buffer, headers?: Readonly<Record<string, string>>): Promise<void>;
  close(): void;
}

/** Everything that differs between transports; a table, so a transport missing from it is a type error. */
export interface TransportKit {
  readonly scheme: string;
  /** What the agent's config file needs, beside `listen`, to serve this transport. */
  readonly agentConfig: Readonly<Record<string, unknown>>;
  /** The baseline's server; it listens where the caller says. */
  createServer(listener: RequestListener): Server;
  /** A keep-alive client with up to `connections` sockets: one per concurrent caller, reused across requests. */
  createClient(connections: number): Client;
}

const KITS: Readonly<Record<Transport, TransportKit>> = {
  http: {
    scheme: 'http',
    agentConfig: {},
    createServer: (listener) => createServer({ keepAlive: true }, listener),
    createClient: (connections) => clientOver(new Agent({ keepAlive: true, maxSockets: connections })),
  },
};

export const transportKit = (transport: Transport): TransportKit => KITS[transport];

function clientOver(agent: Agent): Client {
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
              if (res.statusCode === 200) resolve();
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

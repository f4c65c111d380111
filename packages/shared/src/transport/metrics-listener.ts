// The request listener of a metrics endpoint (agent and `hostfiles serve` alike): GET /metrics and nothing else.
// It reads no request body and echoes nothing of the request, so it can stand on its own plain-HTTP listener.
import {
  createServer,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerOptions,
  type ServerResponse,
} from 'node:http';

export const METRICS_PATH = '/metrics';

/** Where a metrics listener listens unless told otherwise: loopback (a scrape from elsewhere is opened by name). */
export const DEFAULT_METRICS_HOST = '127.0.0.1';

/** What one scrape answers: the registry's text and its content type. */
export interface Exposition {
  readonly contentType: string;
  readonly body: string;
}

/**
 * A scrape asks nothing of the request but its method and path: small limits keep a stranger on the same network
 * (when the operator opened the listener to one) from holding sockets open.
 */
export const METRICS_SERVER_OPTIONS: ServerOptions = {
  headersTimeout: 5_000,
  requestTimeout: 10_000,
  keepAliveTimeout: 5_000,
  maxHeaderSize: 8 * 1024,
  connectionsCheckingInterval: 1_000,
};
/** Connections held at once; Prometheus uses one per target. */
export const METRICS_MAX_CONNECTIONS = 16;

/**
 * `scrape` makes the exposition (the registry's `metrics()`); when it fails, the answer is a bare 500 and `onError`
 * is told. Any other path is a 404, any other method on /metrics a 405.
 */
export function createMetricsListener(
  scrape: () => Promise<Exposition>,
  onError: (error: unknown) => void,
): RequestListener {
  return (request: IncomingMessage, response: ServerResponse) => {
    // The query string is ignored: Prometheus sends none, and nothing here reads one.
    const path = (request.url ?? '').split('?', 1)[0];
    if (path !== METRICS_PATH) {
      plain(response, 404, 'not found\n');
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('allow', 'GET, HEAD');
      plain(response, 405, 'method not allowed\n');
      return;
    }
    scrape().then(
      ({ contentType, body }) => {
        response.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
        response.end(request.method === 'HEAD' ? undefined : body);
      },
      (error: unknown) => {
        onError(error);
        plain(response, 500, 'scrape failed\n');
      },
    );
  };
}

/** A plain-HTTP server answering only `createMetricsListener`'s routes, within small limits; the caller listens. */
export function createMetricsServer(scrape: () => Promise<Exposition>, onError: (error: unknown) => void): Server {
  const server = createServer(METRICS_SERVER_OPTIONS, createMetricsListener(scrape, onError));
  server.maxConnections = METRICS_MAX_CONNECTIONS;
  return server;
}

function plain(response: ServerResponse, status: number, text: string): void {
  // A body sent with the request is never read: the connection closes rather than drain it.
  response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
  response.end(text);
}

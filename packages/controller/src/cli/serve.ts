// `hostfiles serve`: the HTTP API for the cloud platform, the retry worker and health checks, until SIGTERM or SIGINT.
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { createLogger, isLoopbackHost, type Logger, type TlsIdentity } from '@hostfiles/shared';
import type { Hono } from 'hono';
import { createApiApp } from '../api/index.js';
import { FLOW_SETTINGS } from '../config.js';
import type { FlowDeps } from '../flows/index.js';
import { createServeMetrics } from '../metrics/serve-metrics.js';
import { timedAgentClient } from '../metrics/timed-agents.js';
import type { Command } from './command.js';
import { CliError, UsageError } from './errors.js';
import { checkMetricsAddress, closeMetrics, listenMetrics } from './metrics-listener.js';
import { logHostState, resume, startWorker, type ServeEvent } from './serve-log.js';
import { loadTls, loadToken, MIN_TOKEN_LENGTH } from './serve-files.js';
import { createReloader } from './serve-reload.js';

export type { ServeEvent } from './serve-log.js';

export const DEFAULT_LISTEN = '127.0.0.1:7440';
export const DEFAULT_HEALTH_INTERVAL_MS = 10_000;
/** How long a stop waits for in-flight requests before cutting their connections. */
const DRAIN_TIMEOUT_MS = 30_000;

const HINT = 'see `hostfiles serve --help`';

export const SERVE_COMMANDS: readonly Command[] = [
  {
    words: ['serve'],
    args: [],
    flags: [
      { name: 'listen', value: 'HOST:PORT', help: `where the API listens (default: ${DEFAULT_LISTEN}; port 0: any)` },
      {
        name: 'token-file',
        value: 'FILE',
        required: true,
        help: `the API's bearer token: one line, at least ${MIN_TOKEN_LENGTH} characters, the file mode 0600`,
      },
      { name: 'tls-cert', value: 'FILE', help: 'serve HTTPS with this certificate (PEM; with --tls-key)' },
      { name: 'tls-key', value: 'FILE', help: 'the private key of --tls-cert (PEM, the file mode 0600)' },
      {
        name: 'allow-plain-http',
        help: 'serve plain HTTP on an address that is not loopback (the bearer token would cross in clear)',
      },
      {
        name: 'lease-ms',
        value: 'MS',
        help: `beside other controllers: this one is dead to them when not renewed for MS (default: ${FLOW_SETTINGS.leaseMs})`,
      },
      {
        name: 'lease-grace-ms',
        value: 'MS',
        help: `how long a dead controller's leases and operations stay its own; its commands live this less 32 s (default: ${FLOW_SETTINGS.leaseGraceMs})`,
      },
      {
        name: 'metrics-listen',
        value: 'HOST:PORT',
        help: 'serve Prometheus metrics at GET /metrics there, plain HTTP, apart from the API (default: off)',
      },
      {
        name: 'metrics-allow-plain-http',
        help: '--metrics-listen on an address that is not loopback (anyone reaching it reads the metrics)',
      },
      {
        name: 'health-interval-ms',
        value: 'MS',
        help: `how often every host is health-checked (default: ${DEFAULT_HEALTH_INTERVAL_MS})`,
      },
    ],
    summary: 'run the HTTP API (bearer token) with the retry worker and health checks, until SIGTERM',
    details: [
      'At start and in every round, resumes the operations a stopped controller left unfinished (one that died or',
      'was killed: once its --lease-ms and --lease-grace-ms are over, as its commands may still be in flight), then',
      'health-checks the hosts,',
      "drains a host's pending deletions as soon as it reconnects, and retries the others when due.",
      'The API is under /v1 and described at /v1/openapi.json; every route but GET /v1/health needs',
      '`Authorization: Bearer TOKEN`. The token is read from --token-file only (never argv or environment).',
      'HTTPS with --tls-cert and --tls-key (TLS 1.2 or later). Plain HTTP only on a loopback address, unless',
      '--allow-plain-http: the bearer token and VM state would cross the network in clear.',
      'Metrics with --metrics-listen (e.g. 127.0.0.1:9465): GET /metrics, no token, on their own listener, before',
      'the API listens (logged metrics_listening with the port); a non-loopback address only with',
      '--metrics-allow-plain-http. The names are in the README.',
      'Logs are JSON lines on stdout; once listening: {"event":"listening","port":N,...}.',
      'SIGTERM or SIGINT: stop accepting, finish the requests in flight, stop the worker, close the database, exit 0.',
      'SIGHUP: read --token-file (and --tls-cert, --tls-key) again and use them from the next request (connection',
      'for TLS); logged reloaded. A file that no longer reads or checks changes nothing: logged reload_failed with',
      'why, and serve goes on with what it had. Every other option is read once: restart serve to change it.',
      'Several serve processes may share one database (PostgreSQL, or SQLite on one machine): flows hold their keys',
      'as leases there, each process checks and drains its share of the hosts, and resumes the operations of a',
      'process that died once its lease and grace are over. A process whose own lease expired exits 1.',
    ].join('\n'),
    async run(ctx, input) {
      // First: a signal that lands while resuming stops serve too, instead of killing it mid-flow.
      const stop = ctx.io.stopSignal?.();
      const address = parseListen(input.string('listen') ?? DEFAULT_LISTEN, 'listen');
      const metricsListen = input.string('metrics-listen');
      const metricsAddress = metricsListen === undefined ? undefined : parseListen(metricsListen, 'metrics-listen');
      if (metricsAddress !== undefined) {
        checkMetricsAddress(metricsAddress, input.bool('metrics-allow-plain-http'), HINT);
      } else if (input.bool('metrics-allow-plain-http')) {
        throw new UsageError('--metrics-allow-plain-http goes with --metrics-listen', HINT);
      }
      const healthIntervalMs = parseInterval(input.string('health-interval-ms'));
      const tls = loadTls(input.string('tls-cert'), input.string('tls-key'));
      if (tls === undefined && !isLoopbackHost(address.host) && !input.bool('allow-plain-http')) {
        throw new UsageError(
          `plain HTTP on ${address.host} would send the bearer token and VM state in clear: give --tls-cert and ` +
            '--tls-key, listen on a loopback address, or --allow-plain-http',
          HINT,
        );
      }
      const logger = createLogger<ServeEvent>({ write: ctx.io.stdout });
      const reloader = createReloader(
        { tokenFile: input.required('token-file'), tlsCert: input.string('tls-cert'), tlsKey: input.string('tls-key') },
        loadToken(input.required('token-file')),
        logger,
      );
      // From here on (until the process ends) a SIGHUP reloads instead of killing, even while resuming.
      ctx.io.onReload?.(() => {
        reloader.reload();
      });
      const lease = {
        leaseMs: parseMs(input.string('lease-ms'), 'lease-ms', FLOW_SETTINGS.leaseMs),
        graceMs: parseMs(input.string('lease-grace-ms'), 'lease-grace-ms', FLOW_SETTINGS.leaseGraceMs),
      };
      // Every flow serve runs (resume, the worker, the API's) tells each host transition once: logged.
      const opened: FlowDeps = { ...(await ctx.flows(lease)), onHostState: logHostState(logger) };
      const metrics = metricsAddress === undefined ? undefined : createServeMetrics(opened);
      const deps = metrics === undefined ? opened : { ...opened, agents: timedAgentClient(opened.agents, metrics) };
      let lostReason: string | undefined;
      const stopOrLost = new AbortController();
      stop?.addEventListener(
        'abort',
        () => {
          stopOrLost.abort(stop.reason);
        },
        { once: true },
      );
      if (stop?.aborted === true) stopOrLost.abort(stop.reason);
      void deps.controller?.lost?.then((reason) => {
        lostReason = reason;
        logger.error('controller_lost', { controllerId: deps.controller?.id, reason });
        stopOrLost.abort('lease lost');
      });
      // Before resuming: a long resume is watched too.
      const metricsServer =
        metrics === undefined || metricsAddress === undefined
          ? undefined
          : await listenMetrics(metrics, metricsAddress, logger);
      try {
        await resume(deps, logger);
        if (stop?.aborted === true) {
          logger.info('stopped', { signal: String(stop.reason) });
          return;
        }
        const worker = startWorker(deps, healthIntervalMs, logger, metrics);
        try {
          const onFlow = metrics === undefined ? {} : { onFlow: metrics.flow.bind(metrics) };
          await serveUntil(
            stopOrLost.signal,
            createApiApp({ flows: deps, token: reloader.token, logger, ...onFlow }),
            { ...address, tls },
            logger,
            (server) => {
              reloader.attach(tls === undefined ? undefined : (server as HttpsServer));
            },
          );
        } finally {
          await worker.stop();
        }
      } finally {
        // The runner closes the database once this returns: no scrape may reach it after.
        if (metricsServer !== undefined) await closeMetrics(metricsServer);
      }
      logger.info('stopped', {});
      if (lostReason !== undefined) throw new CliError(`this controller's lease was lost: ${lostReason}`);
    },
  },
];

/** Listens, and once `stop` aborts: stops accepting and resolves when the requests in flight are answered. */
async function serveUntil(
  stop: AbortSignal | undefined,
  app: Hono,
  address: ListenAddress,
  logger: Logger<ServeEvent>,
  onListening: (server: ServerType) => void,
): Promise<void> {
  let stopping = false;
  const { server, port } = await listen(
    closingWhen(app, () => stopping),
    address,
  );
  onListening(server);
  logger.info('listening', { host: address.host, port, tls: address.tls !== undefined });
  await aborted(stop);
  stopping = true;
  logger.info('stopping', { signal: String(stop?.reason) });
  await close(server);
}

interface ListenAddress {
  readonly host: string;
  readonly port: number;
  /** HTTPS with this certificate and key; plain HTTP without */
  readonly tls?: TlsIdentity | undefined;
}

/** HOST:PORT, [IPv6]:PORT */
function parseListen(value: string, flag: 'listen' | 'metrics-listen'): ListenAddress {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(value);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (host === undefined || !(port <= 65_535)) {
    throw new UsageError(`--${flag} is HOST:PORT (e.g. ${DEFAULT_LISTEN} or [::1]:7440), not ${value}`, HINT);
  }
  return { host, port };
}

function parseMs(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const ms = /^\d{1,9}$/.test(value) ? Number(value) : NaN;
  if (!(ms >= 100 && ms <= 86_400_000)) {
    throw new UsageError(`--${flag} is a whole number from 100 to 86400000, not ${value}`, HINT);
  }
  return ms;
}

function parseInterval(value: string | undefined): number {
  if (value === undefined) return DEFAULT_HEALTH_INTERVAL_MS;
  const ms = /^\d{1,9}$/.test(value) ? Number(value) : NaN;
  if (!(ms >= 10 && ms <= 86_400_000)) {
    throw new UsageError(`--health-interval-ms is a whole number from 10 to 86400000, not ${value}`, HINT);
  }
  return ms;
}

type Fetch = (request: Request, env: unknown) => Promise<Response>;

/**
 * The app's fetch; once `stopping`, every answer also closes its connection. A keep-alive client would otherwise
 * hold the drain open until its socket timed out, as the answers in flight finish after close() looked for idle ones.
 */
function closingWhen(app: Hono, stopping: () => boolean): Fetch {
  return async (request, env) => {
    const response = await app.fetch(request, env);
    if (!stopping()) return response;
    const headers = new Headers(response.headers);
    headers.set('connection', 'close');
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  };
}

function listen(fetch: Fetch, address: ListenAddress): Promise<{ server: ServerType; port: number }> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      reject(new CliError(`cannot listen on ${address.host}:${address.port}: ${error.code ?? error.message}`));
    };
    const onListening = (info: AddressInfo): void => {
      server.off('error', onError);
      resolve({ server, port: info.port });
    };
    const { host: hostname, port, tls } = address;
    const server =
      tls === undefined
        ? serve({ fetch, hostname, port }, onListening)
        : serve(
            {
              fetch,
              hostname,
              port,
              createServer: createHttpsServer,
              serverOptions: { cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' },
            },
            onListening,
          );
    server.once('error', onError);
  });
}

/** Resolves when `signal` aborts; never without one (serve then runs until the process is killed). */
function aborted(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) resolve();
    signal?.addEventListener('abort', () => {
      resolve();
    });
  });
}

/** Stops accepting at once; resolves when the requests in flight are answered (or cut after DRAIN_TIMEOUT_MS). */
function close(server: ServerType): Promise<void> {
  return new Promise((resolve) => {
    const cut = setTimeout(() => {
      if ('closeAllConnections' in server) server.closeAllConnections();
    }, DRAIN_TIMEOUT_MS);
    server.close(() => {
      clearTimeout(cut);
      resolve();
    });
    // Keep-alive connections with no request in flight would hold close() open until they time out.
    if ('closeIdleConnections' in server) server.closeIdleConnections();
  });
}

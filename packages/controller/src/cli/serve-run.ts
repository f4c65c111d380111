// What `hostfiles serve` runs once its flags are checked (serve.ts): the API, the retry worker and health checks,
// until its stop signal. Loaded only when serve runs: it brings in hono, the API's schemas and prom-client.
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { createLogger, type Logger, type TlsIdentity } from '@hostfiles/shared';
import type { Hono } from 'hono';
import { createApiApp } from '../api/index.js';
import type { FlowDeps, LeaseSettings } from '../flows/index.js';
import { createServeMetrics } from '../metrics/serve-metrics.js';
import { timedAgentClient } from '../metrics/timed-agents.js';
import type { CommandContext } from './command.js';
import { CliError } from './errors.js';
import { closeMetrics, listenMetrics, type MetricsAddress } from './metrics-listener.js';
import { logHostState, resume, startWorker, type ServeEvent } from './serve-log.js';
import { createReloader, type ReloadFiles } from './serve-reload.js';

/** How long a stop waits for in-flight requests before cutting their connections. */
const DRAIN_TIMEOUT_MS = 30_000;

/** serve's flags, checked. */
export interface ServeSettings {
  /** aborted on SIGTERM or SIGINT; asked for first, so that a signal during the resume stops serve too */
  readonly stop: AbortSignal | undefined;
  readonly address: ListenAddress;
  readonly metricsAddress: MetricsAddress | undefined;
  readonly healthIntervalMs: number;
  /** the token read from `files.tokenFile` at start */
  readonly token: string;
  /** read again on each SIGHUP */
  readonly files: ReloadFiles;
  readonly lease: LeaseSettings;
}

export async function runServe(ctx: CommandContext, settings: ServeSettings): Promise<void> {
  const { stop, address, metricsAddress, healthIntervalMs, token, files, lease } = settings;
  const syslogPrefix = (await ctx.io.stdoutIsJournal?.()) ?? false;
  const logger = createLogger<ServeEvent>({ write: ctx.io.stdout, syslogPrefix });
  const reloader = createReloader(files, token, logger);
  // From here on (until the process ends) a SIGHUP reloads instead of killing, even while resuming.
  ctx.io.onReload?.(() => {
    reloader.reload();
  });
  // Every flow serve runs (resume, the worker, the API's) tells each host transition once: logged.
  const opened: FlowDeps = {
    ...(await ctx.flows(lease)),
    onHostState: logHostState(logger),
  };
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
        address,
        logger,
        (server) => {
          reloader.attach(address.tls === undefined ? undefined : (server as HttpsServer));
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
}

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

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
  /** HTTPS with this certificate and key; plain HTTP without */
  readonly tls?: TlsIdentity | undefined;
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

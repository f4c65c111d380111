// serve's metrics listener: plain HTTP, GET /metrics only, apart from the API (and its bearer token).
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMetricsServer, isLoopbackHost, type Logger } from '@hostfiles/shared';
import type { ServeMetrics } from '../metrics/serve-metrics.js';
import { CliError, UsageError } from './errors.js';

export const METRICS_EVENTS = ['metrics_listening', 'metrics_failed'] as const;
export type MetricsEvent = (typeof METRICS_EVENTS)[number];

export interface MetricsAddress {
  readonly host: string;
  readonly port: number;
}

/** The metrics tell how many hosts and deletions there are, never which: still only on loopback unless allowed. */
export function checkMetricsAddress(address: MetricsAddress, allowPlainHttp: boolean, hint: string): void {
  if (allowPlainHttp || isLoopbackHost(address.host)) return;
  throw new UsageError(
    `metrics on ${address.host} would be open to anyone who can reach it: scrape through a loopback address, or ` +
      '--metrics-allow-plain-http',
    hint,
  );
}

/** Resolves once listening (logged `metrics_listening` with its port); a failure to listen is the command's. */
export function listenMetrics(
  metrics: ServeMetrics,
  { host, port }: MetricsAddress,
  logger: Logger<MetricsEvent>,
): Promise<Server> {
  const server = createMetricsServer(
    () => metrics.scrape(),
    (error) => {
      logger.warn('metrics_failed', { message: error instanceof Error ? error.message : String(error) });
    },
  );
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(new CliError(`cannot listen for metrics on ${host}:${port}: ${error.code ?? error.message}`));
    });
    server.listen(port, host, () => {
      const info = server.address() as AddressInfo;
      logger.info('metrics_listening', { host: info.address, port: info.port, path: '/metrics' });
      resolve(server);
    });
  });
}

/** Stops at once: a scrape in flight is cut (the database closes right after). */
export function closeMetrics(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => {
      resolve();
    });
    server.closeAllConnections();
  });
}

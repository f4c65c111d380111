// What `hostfiles serve` logs beside the API's requests: the operations it resumed at start, each host's transitions,
// and the retry worker's passes — every count followed by the ids, hosts and reasons it counts.
import type { Logger } from '@hostfiles/shared';
import { API_EVENTS } from '../api/deps.js';
import {
  createFleetShare,
  createRetryWorker,
  resumeOperations,
  type FlowDeps,
  type HostTransition,
  type ResumeReport,
  type RetryWorker,
} from '../flows/index.js';
import type { ServeMetrics } from '../metrics/serve-metrics.js';
import { METRICS_EVENTS } from './metrics-listener.js';
import { reportError } from './ops.js';

/** Every event `serve` logs: the closed set the README's table of log events documents (log-events.test.ts). */
export const SERVE_EVENTS = [
  ...API_EVENTS,
  ...METRICS_EVENTS,
  'resumed',
  'operation_resumed',
  'operation_left_running',
  'resume_failed',
  'listening',
  'host_connected',
  'host_disconnected',
  'retry_pass',
  'retry_still_pending',
  'retry_error',
  'controller_lost',
  'stopping',
  'reloaded',
  'reload_failed',
  'stopped',
] as const;
export type ServeEvent = (typeof SERVE_EVENTS)[number];

export function logHostState(logger: Logger<ServeEvent>): (change: HostTransition) => void {
  return ({ hostName, hostUuid, from, to, reason }) => {
    if (to === 'Connected') logger.info('host_connected', { host: hostName, hostUuid, from });
    else logger.warn('host_disconnected', { host: hostName, hostUuid, from, reason });
  };
}

export async function resume(deps: FlowDeps, logger: Logger<ServeEvent>): Promise<void> {
  await logResumed(deps, await resumeOperations(deps), logger);
}

/** The resumed operations' count, then each by id with how it ended and why. */
async function logResumed(deps: FlowDeps, report: ResumeReport, logger: Logger<ServeEvent>): Promise<void> {
  logger.info('resumed', {
    resumed: report.resumed.length,
    failed: report.failed.length,
    unknown: report.unknown.length,
    errors: report.errors.length,
    detached: report.detached.length,
  });
  // Each operation by id, with how it ended and why, so no count above stands without them.
  const failed = new Set(report.failed);
  for (const id of report.resumed) {
    const operation = await deps.store.getOperation(id);
    const fields = { operationId: id, kind: operation?.kind, state: operation?.state };
    if (failed.has(id)) logger.warn('operation_resumed', { ...fields, error: reportError(operation?.report) });
    else logger.info('operation_resumed', fields);
  }
  for (const id of report.unknown) {
    const operation = await deps.store.getOperation(id);
    logger.warn('operation_left_running', {
      operationId: id,
      kind: operation?.kind,
      message: 'no resumer here knows its kind: left for a controller that does',
    });
  }
  // Left running in the journal: the next start tries them again. Serving goes on meanwhile.
  for (const error of report.errors) logger.warn('resume_failed', { operationId: error.id, message: error.message });
}

export function startWorker(
  deps: FlowDeps,
  healthIntervalMs: number,
  logger: Logger<ServeEvent>,
  metrics: Pick<ServeMetrics, 'flow'> | undefined,
): RetryWorker {
  const controller = deps.controller;
  const worker = createRetryWorker(deps, {
    healthIntervalMs,
    // Beside other controllers: this one's share of the hosts, and the operations of any that died.
    ...(controller === undefined
      ? {}
      : {
          share: createFleetShare(deps.store, controller, deps.now),
          beforeRound: async () => {
            const report = await resumeOperations(deps);
            if (report.resumed.length + report.unknown.length + report.errors.length > 0) {
              await logResumed(deps, report, logger);
            }
          },
        }),
    onPass: (pass) => {
      metrics?.flow('retry', 'ok');
      logger.info('retry_pass', {
        attempted: pass.attempted,
        confirmed: pass.confirmed,
        stillPending: pass.stillPending,
        detached: pass.detached.length,
      });
      // Under the count, per host: how many are still pending and why (the distinct reasons, a few at most).
      for (const host of pass.hosts) {
        const left = host.files.filter((f) => f.status === 'unconfirmed');
        if (left.length === 0) continue;
        const reasons = [...new Set(left.map((f) => ('reason' in f ? f.reason : 'not confirmed')))];
        logger.warn('retry_still_pending', {
          host: host.hostName,
          hostUuid: host.hostUuid,
          files: left.length,
          reason: reasons.slice(0, 3).join('; ') + (reasons.length > 3 ? `; and ${reasons.length - 3} more` : ''),
        });
      }
    },
    onError: (error) => {
      // A round of the worker failed: its retry pass, or one host's health check.
      metrics?.flow('retry', 'error');
      logger.warn('retry_error', { message: error instanceof Error ? error.message : String(error) });
    },
  });
  worker.start();
  return worker;
}

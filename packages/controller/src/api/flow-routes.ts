// Which API routes run a flow, and the middleware that tells each one's end (its kind and outcome) to the metrics.
import type { MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import type { FlowKind, FlowOutcome } from '../metrics/serve-metrics.js';
import { toApiError } from './errors.js';

/** `METHOD route` (as registered) → the flow it runs. Routes that only read the database are not flows. */
export const FLOW_ROUTES: ReadonlyMap<string, FlowKind> = new Map<string, FlowKind>([
  ['POST /v1/hosts', 'host_add'],
  ['POST /v1/vms', 'vm_add'],
  ['POST /v1/vms/:vm/move', 'vm_move'],
  ['POST /v1/vms/:vm/tpm', 'tpm_add'],
  ['POST /v1/files', 'write'],
  ['POST /v1/vms/:vm/adopt', 'adopt'],
  ['POST /v1/vms/:vm/sync', 'sync'],
  ['POST /v1/sync', 'fleet_sync'],
  ['POST /v1/vms/:vm/restore', 'restore'],
  ['POST /v1/hosts/:host/reconcile', 'reconcile'],
  ['POST /v1/tpms/remove', 'remove_tpm'],
  ['DELETE /v1/vms/:vm', 'destroy_vm'],
  ['POST /v1/retry', 'retry'],
]);

export type FlowObserver = (kind: FlowKind, outcome: FlowOutcome) => void;

/**
 * After the route answered (onError included): the flow's kind from the route it matched — the registered pattern,
 * never the request's own path — and its outcome from the error it ended in, if any.
 */
export function countFlows(onFlow: FlowObserver): MiddlewareHandler {
  return async (c, next) => {
    await next();
    const kind = FLOW_ROUTES.get(`${c.req.method} ${routePath(c, -1)}`);
    if (kind === undefined) return;
    onFlow(kind, c.error === undefined && c.res.status < 400 ? 'ok' : toApiError(c.error).code);
  };
}

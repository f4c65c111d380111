// What the API app is handed, and what its routes get from it.
import type { Logger } from '@hostfiles/shared';
import type { Context } from 'hono';
import type { FlowDeps } from '../flows/index.js';
import type { FlowObserver } from './flow-routes.js';

declare module 'hono' {
  interface ContextVariableMap {
    /** the operation the request's flow journaled: its request log line names it */
    operationId: string;
  }
}

/** Notes the operation of a journaled flow's report for the request's log line; answers the report. */
export function journaled<R extends { readonly operationId: string }>(c: Context, report: R): R {
  c.set('operationId', report.operationId);
  return report;
}

/** The API's log events. */
export const API_EVENTS = ['request', 'request_failed', 'internal_error'] as const;
export type ApiEvent = (typeof API_EVENTS)[number];

export interface ApiDeps {
  readonly flows: FlowDeps;
  /** the bearer token every route but GET /v1/health requires */
  readonly token: string | (() => string);
  readonly logger?: Logger<ApiEvent>;
  /** the largest request body, declared or read (default 8 MiB) */
  readonly maxBodyBytes?: number;
  /** told of every flow a route ran, once it answered (serve's metrics); default: nobody */
  readonly onFlow?: FlowObserver;
}

export interface ApiContext {
  readonly flows: FlowDeps;
  readonly maxBodyBytes: number;
}

export const DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024;

// What the app needs, handed in by main.ts (or a test): no module reads process state.
import type { Logger, SigningKey, TrustedKey } from '@hostfiles/shared';
import { STORE_EVENTS, type FileRoots, type FileStore } from './files/index.js';
import type { ReplayJournal } from './journal/replay-journal.js';
import type { BodyBudget } from './limits/body-budget.js';
import type { Peer } from './limits/connection-places.js';
import type { AgentMetrics } from './metrics/agent-metrics.js';

export const AGENT_EVENTS = [
  'listening',
  'request',
  'op',
  'refused',
  'internal_error',
  'draining',
  'stopped',
  'temp_files_removed',
  'state_recovered',
  'key_generated',
  'root_made',
  'root_missing',
  'client_refused',
  'connections_dropped',
  'connections_replaced',
  'connections_rate_limited',
  'connections_address_limited',
  'metrics_listening',
  'metrics_failed',
  'reloaded',
  'reload_failed',
  ...STORE_EVENTS,
] as const;
export type AgentEvent = (typeof AGENT_EVENTS)[number];

export interface AppDeps {
  readonly hostUuid: string;
  readonly version: string;
  readonly startedAt: number;
  readonly roots: FileRoots;
  readonly trustedKeys: ReadonlyMap<string, TrustedKey>;
  readonly signer: SigningKey;
  readonly journal: ReplayJournal;
  readonly files: FileStore;
  readonly logger: Logger<AgentEvent>;
  readonly now: () => number;
  readonly maxBodyBytes: number;
  /** request-body bytes in flight across all connections (check 1, 503 overloaded past it) */
  readonly bodyBudget: BodyBudget;
  /** The most decoded content bytes one command may carry in total (check 9, 413 too_large). */
  readonly maxContentBytes: number;
  readonly clockSkewMs: number;
  /** what requests and ops are counted into (default: nothing kept; main.ts hands one when metrics are on) */
  readonly metrics?: AgentMetrics;
  /**
   * hears of each connection that carried a command signed for this host, in its time, and not other bytes under a
   * known requestId (a retry too): a controller's (connection-places.ts)
   */
  readonly trustConnection?: (peer: Peer | undefined) => void;
  /** whether a connection was proven a controller's (trustConnection, or its client certificate) */
  readonly connectionTrusted?: (peer: Peer | undefined) => boolean;
}

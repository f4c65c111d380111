// What every flow is handed: no flow reads process state, the clock, or randomness on its own.
import type { AgentClient } from '../agents/index.js';
import { hasBrand } from '../brand.js';
import type { HostState, Store } from '../store/index.js';
// types.js, not the store's index: cli/errors.ts loads this module at start-up, and the index loads the engines.
import type { LeaseSettings } from './controller-lease.js';
import type { VmQueue } from './vm-queue.js';

export interface FlowDeps {
  readonly store: Store;
  readonly agents: AgentClient;
  readonly queue: VmQueue;
  readonly now: () => number;
  /** in [0, 1): the jitter of retry backoff */
  readonly random: () => number;
  /** how many hosts are reached at once */
  readonly concurrency: number;
  /** retry backoff: base and cap, ms */
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  readonly onProgress?: (event: ProgressEvent) => void;
  /**
   * This process as a controller registered in the database (controller-lease.ts), when it is one: then `resume`
   * takes only the operations of dead controllers, and the worker only its share of the hosts.
   */
  readonly controller?: {
    readonly id: string;
    readonly settings: LeaseSettings;
    /** resolves, with the reason, when the registration is lost: the process must stop */
    readonly lost?: Promise<string>;
  };
  /** each change of a host's state, once, whichever flow saw it (serve logs them) */
  readonly onHostState?: (change: HostTransition) => void;
}

export interface HostTransition {
  readonly hostUuid: string;
  readonly hostName: string;
  readonly from: HostState;
  readonly to: HostState;
  /** going Disconnected: what the call met, or why the host was refused */
  readonly reason?: string;
}

export interface ProgressEvent {
  readonly flow: string;
  readonly done: number;
  readonly total: number;
  readonly host?: string;
}

/**
 * `busy`: a running swtpm or QEMU holds the state (stop the VM, or force where offered). `unavailable`: a host did
 * not answer in a way that says what happened. `host_key_changed`: a pinned host answers with another key or TLS
 * certificate. `host_key_mismatch`: an agent being pinned does not hold the key expected.
 */
export const FLOW_ERROR_CODES = [
  'not_found',
  'bad_input',
  'conflict',
  'busy',
  'unavailable',
  'host_key_changed',
  'host_key_mismatch',
] as const;
export type FlowErrorCode = (typeof FLOW_ERROR_CODES)[number];

const FLOW_ERROR: unique symbol = Symbol.for('hostfiles.FlowError');

export class FlowError extends Error {
  override readonly name = 'FlowError';
  /** see brand.ts: a FlowError is told apart by it, not by `instanceof` */
  readonly [FLOW_ERROR] = true;
  constructor(
    readonly code: FlowErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export const isFlowError = (error: unknown): error is FlowError => hasBrand(error, FLOW_ERROR);

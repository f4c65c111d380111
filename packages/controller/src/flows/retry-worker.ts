// The background half of `serve` (and of the demo): health checks mark hosts Connected/Disconnected, a host that
// comes back is drained at once, and due deletions are retried whenever their backoff has passed.
import { mapLimit } from '@hostfiles/shared';
import type { FlowDeps } from './deps.js';
import { checkHost } from './hosts.js';
import { retryPendingDeletions, type RetryReport } from './retry.js';

/** Where the worker's wake-ups are armed: the real timers, or a test's virtual ones (with `deps.now` to match). */
export interface Timers {
  setTimeout(run: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const REAL_TIMERS: Timers = {
  setTimeout: (run, ms) => setTimeout(run, ms),
  clearTimeout: (handle) => {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

export interface RetryWorkerOptions {
  /** how often every host is health-checked */
  readonly healthIntervalMs: number;
  /** default: the real timers */
  readonly timers?: Timers;
  readonly onPass?: (report: RetryReport) => void;
  readonly onError?: (error: unknown) => void;
  /**
   * The hosts this worker checks and drains, asked at each round: its share when several controllers share the fleet
   * (serve's fleet-share.ts). Every host when absent.
   */
  readonly share?: () => Promise<ReadonlySet<string>>;
  /** Called at each round, before the hosts: serve resumes the operations of dead controllers there. */
  readonly beforeRound?: () => Promise<void>;
}

export interface RetryWorker {
  /** one round now: health checks, reconnected hosts drained, due rows retried */
  tick(): Promise<void>;
  start(): void;
  stop(): Promise<void>;
}

export function createRetryWorker(deps: FlowDeps, options: RetryWorkerOptions): RetryWorker {
  const timers = options.timers ?? REAL_TIMERS;
  let timer: unknown;
  let running: Promise<void> | undefined;
  let stopped = true;
  // Read through a call after an await: the type checker would take a plain read there for the value before it.
  const isStopped = (): boolean => stopped;

  const tick = async (): Promise<void> => {
    await options.beforeRound?.();
    const share = await options.share?.();
    const hosts = (await deps.store.listHosts()).filter((host) => share === undefined || share.has(host.uuid));
    // Hosts checked as many at once as flows reach: one down host's timeout must not hold up the others.
    await mapLimit(hosts, deps.concurrency, async (host) => {
      const before = host.state;
      // A transition is told through deps.onHostState by the check itself (flows/host-state.ts).
      const { state: after } = await checkHost(deps, host).catch((error: unknown) => {
        options.onError?.(error);
        return { state: 'Disconnected' as const };
      });
      if (before === 'Disconnected' && after === 'Connected') {
        options.onPass?.(await retryPendingDeletions(deps, { hostUuid: host.uuid, all: true }));
      }
    });
    const report = await retryPendingDeletions(deps, share === undefined ? {} : { hostUuids: share });
    if (report.attempted > 0) options.onPass?.(report);
  };

  const schedule = async (): Promise<void> => {
    if (stopped) return;
    let due: number | null;
    try {
      due = await deps.store.nextDeletionDueAt();
    } catch (error) {
      // The database did not answer (a restart, dropped connections): said, and asked again after a health interval.
      // Unhandled, this rejection ended serve.
      options.onError?.(error);
      due = null;
    }
    // Stopped while the database answered: arming now would outlive stop() (and wake on a closed store).
    if (isStopped()) return;
    const wait =
      due === null ? options.healthIntervalMs : Math.min(options.healthIntervalMs, Math.max(0, due - deps.now()));
    timer = timers.setTimeout(() => {
      timer = undefined;
      running = tick()
        .catch((error: unknown) => options.onError?.(error))
        .then(schedule);
    }, wait);
  };

  return {
    tick,
    start() {
      if (!stopped) return;
      stopped = false;
      running = schedule();
    },
    async stop() {
      stopped = true;
      if (timer !== undefined) timers.clearTimeout(timer);
      timer = undefined;
      await running;
    },
  };
}

// Several controllers on one database (docs/DESIGN.md, "Several controllers"): each process registers itself, keeps
// itself alive with a heartbeat, and holds every lock key of its flows as lease rows, so flows on one VM, path or
// host are serialized across processes as the in-process queue serializes them inside one.
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Store } from '../store/index.js';
import type { LockKey, VmQueue } from './vm-queue.js';

/** How much a controller's clock, an agent's and the database's may differ (NTP-synced hosts), at most. */
export const CLOCK_MARGIN_MS = 2_000;

export interface LeaseSettings {
  /** A controller not renewed for this long is dead to the others (it renews every third of it). */
  readonly leaseMs: number;
  /**
   * How much longer a dead controller's leases still count, and its operations stay its own: the commands it signed
   * may still reach an agent until they expire (their lifetime, leaseMs, plus the agent's clock skew allowance).
   */
  readonly graceMs: number;
}

export interface ControllerRegistration {
  readonly id: string;
  readonly settings: LeaseSettings;
  /** Resolves when the registration is lost (expired, retired by another, the database unreachable past expiry). */
  readonly lost: Promise<string>;
  /** Stops the heartbeat and retires the controller: its leases go, its running operations become orphans. */
  retire(): Promise<void>;
}

export interface RegisterOptions {
  readonly now: () => number;
  readonly settings: LeaseSettings;
  /** Where the heartbeat's timer is armed (tests: virtual time). */
  readonly setInterval?: (run: () => void, ms: number) => { unref?: () => void };
  readonly clearInterval?: (handle: unknown) => void;
}

/**
 * Registers this process as a controller of the database and keeps it alive. From then on the store acts for it: the
 * operations it starts name it, and each of its write transactions checks it is still alive (fencing).
 */
export async function registerController(store: Store, options: RegisterOptions): Promise<ControllerRegistration> {
  const { now, settings } = options;
  const id = randomUUID();
  const startedAt = now();
  await store.registerController({
    id,
    host: hostname(),
    pid: process.pid,
    startedAt,
    expiresAt: startedAt + settings.leaseMs,
  });
  store.actAs(id);
  let expiresAt = startedAt + settings.leaseMs;
  let reportLost: (reason: string) => void = () => undefined;
  const lost = new Promise<string>((resolve) => (reportLost = resolve));
  let done = false;
  const lose = (reason: string): void => {
    if (done) return;
    done = true;
    clear(handle);
    reportLost(reason);
  };
  const beat = async (): Promise<void> => {
    const at = now();
    try {
      if (await store.renewController(id, at, at + settings.leaseMs)) expiresAt = at + settings.leaseMs;
      else lose('its registration expired: another controller may have taken its work');
    } catch (error) {
      // The database may come back before the registration expires (a restart, a dropped connection): keep trying.
      if (now() >= expiresAt) {
        lose(
          `the database did not answer before the registration expired (${error instanceof Error ? error.message : String(error)})`,
        );
      }
    }
  };
  const arm = options.setInterval ?? ((run, ms) => setInterval(run, ms));
  const clear =
    options.clearInterval ??
    ((h: unknown) => {
      clearInterval(h as NodeJS.Timeout);
    });
  let beating: Promise<void> = Promise.resolve();
  const handle = arm(
    () => {
      beating = beating.then(beat);
    },
    Math.max(1, Math.floor(settings.leaseMs / 3)),
  );
  handle.unref?.();
  return {
    id,
    settings,
    lost,
    async retire() {
      if (!done) {
        done = true;
        clear(handle);
      }
      await beating;
      store.actAs(null);
      await store.retireController(id);
    },
  };
}

export interface LeasedQueueOptions {
  readonly now: () => number;
  /** Called once per flow that must wait for another controller's lease (tests order processes by it). */
  readonly onWait?: (keys: readonly string[]) => void;
  /** Polling backoff while another controller holds a key: from this, doubling, up to maxPollMs. */
  readonly pollMs?: number;
  readonly maxPollMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
}

/**
 * The in-process queue, then the same keys as leases in the database: a flow runs once no other live controller
 * holds what it needs. All keys are taken in one write transaction or none are (no process holds a part while it
 * waits for the rest, so controllers cannot deadlock one another). Released when the flow ends, or with the
 * controller when it dies.
 */
export function createLeasedQueue(
  inner: VmQueue,
  store: Store,
  registration: Pick<ControllerRegistration, 'id' | 'settings'>,
  options: LeasedQueueOptions,
): VmQueue {
  const pollMs = options.pollMs ?? 25;
  const maxPollMs = options.maxPollMs ?? 1_000;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  return {
    run<T>(keys: readonly LockKey[], fn: () => Promise<T>): Promise<T> {
      return inner.run(keys, async () => {
        const holder = randomUUID();
        let wait = pollMs;
        let waited = false;
        while (
          !(await store.tryAcquireLeases(holder, registration.id, keys, options.now(), registration.settings.graceMs))
        ) {
          if (!waited) options.onWait?.(keys.map((k) => k.key));
          waited = true;
          await sleep(wait);
          wait = Math.min(maxPollMs, wait * 2);
        }
        try {
          return await fn();
        } finally {
          // A release that fails leaves rows that die with the controller; the flow's outcome stands.
          await store.releaseLeases(holder).catch(() => undefined);
        }
      });
    },
  };
}

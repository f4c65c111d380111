// The retry worker in virtual time: wake-ups at the due time to the millisecond, the backoff a failure pushes a row
// back by, a host's return draining it early, and a stop that lands while the scheduler reads the database.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  backoff,
  createRetryWorker,
  type FlowDeps,
  type RetryReport,
  type RetryWorker,
  type Store,
} from '@hostfiles/controller';
import { plant, roots, withFleet, type Fleet } from './support/controller.js';
import { virtualTime, type VirtualTime } from './support/virtual-time.js';

const HEALTH_MS = 60_000;

/** The fleet's deps on virtual time, with a real (non-zero) backoff and a fixed jitter. */
function timedDeps(fleet: Fleet, time: VirtualTime, store: Store = fleet.store): FlowDeps {
  return { ...fleet.deps, store, now: time.now, retryBaseMs: 5_000, retryMaxMs: 60_000, random: () => 0.5 };
}

/** A worker whose passes can be awaited one by one. */
function startWorker(
  deps: FlowDeps,
  time: VirtualTime,
): { readonly worker: RetryWorker; readonly nextPass: () => Promise<RetryReport> } {
  const waiting: ((report: RetryReport) => void)[] = [];
  const errors: unknown[] = [];
  const worker = createRetryWorker(deps, {
    healthIntervalMs: HEALTH_MS,
    timers: time.timers,
    onPass: (report) => waiting.shift()?.(report),
    onError: (error) => errors.push(error),
  });
  return {
    worker,
    nextPass: () =>
      new Promise((resolve) => {
        waiting.push(resolve);
      }),
  };
}

/** A file on host0's disk and an outbox row for it, due `dueIn` ms from now. */
async function pendingFile(fleet: Fleet, time: VirtualTime, dueIn: number): Promise<string> {
  const path = join(roots(fleet, 0).TpmState, 'gone-vm', 'tpm2-00.permall');
  plant(path, Buffer.from('state of a removed TPM'));
  const host = await fleet.store.getHostByName('host0');
  assert.ok(host);
  await fleet.store.addPendingDeletions([
    {
      hostUuid: host.uuid,
      type: 'TpmState',
      path,
      vmUuid: 'gone-vm',
      tpmUuid: null,
      nextAttemptAt: time.now() + dueIn,
      lastError: null,
    },
  ]);
  return path;
}

test('backoff: base·2^(n−1) capped at the maximum, half of it fixed and half jitter', () => {
  const at = (random: number, attempts: number): number =>
    backoff({ retryBaseMs: 5_000, retryMaxMs: 60_000, random: () => random }, attempts);
  assert.deepEqual([at(0, 1), at(0.5, 1), at(0.999, 1)], [2_500, 3_750, 4_998]);
  assert.deepEqual([at(0, 2), at(0, 3), at(0, 4)], [5_000, 10_000, 20_000]);
  // 5 s · 2^4 = 80 s is over the 60 s cap: the cap, jittered.
  assert.deepEqual([at(0, 5), at(0.5, 5), at(0, 1_000)], [30_000, 45_000, 30_000]);
  // A row never attempted waits what a first attempt does.
  assert.equal(at(0.5, 0), at(0.5, 1));
});

test('the worker wakes at a row’s due time to the millisecond, deletes it, then sleeps a health interval', async () => {
  await withFleet(1, async (fleet) => {
    const time = virtualTime(Date.now());
    const path = await pendingFile(fleet, time, 5_000);
    const { worker, nextPass } = startWorker(timedDeps(fleet, time), time);
    const armed = time.nextArmed();
    worker.start();
    assert.equal((await armed) - time.now(), 5_000, 'armed for the row, not for the health interval');
    time.advance(4_999);
    assert.equal(existsSync(path), true, 'nothing runs a millisecond early');
    const pass = nextPass();
    const rearmed = time.nextArmed();
    time.advance(1);
    const report = await pass;
    assert.deepEqual([report.attempted, report.confirmed, report.stillPending], [1, 1, 0]);
    assert.equal(existsSync(path), false);
    assert.deepEqual(await fleet.store.listPendingDeletions(), []);
    assert.equal((await rearmed) - time.now(), HEALTH_MS, 'nothing due: the next wake-up is the health check');
    await worker.stop();
    assert.deepEqual(time.pending(), [], 'stop clears the armed timer');
  });
});

test('a failed attempt pushes the row back by the jittered backoff; the host coming back drains it before that', async () => {
  await withFleet(1, async (fleet) => {
    const time = virtualTime(Date.now());
    const path = await pendingFile(fleet, time, 0);
    await fleet.stop(0);
    const deps = timedDeps(fleet, time);
    const { worker, nextPass } = startWorker(deps, time);
    const armed = time.nextArmed();
    worker.start();
    assert.equal(await armed, time.now(), 'due now');
    const pass = nextPass();
    const rearmed = time.nextArmed();
    time.advance(0);
    assert.deepEqual([(await pass).attempted, (await pass).stillPending], [1, 1]);
    const [row] = await fleet.store.listPendingDeletions();
    assert.ok(row);
    // First failure: attempts 1, backoff(1) = 2.5 s + 2.5 s · 0.5.
    assert.equal(row.attempts, 1);
    assert.equal(row.nextAttemptAt, time.now() + 3_750);
    assert.equal(row.nextAttemptAt, backoff(deps, 1) + time.now());
    assert.equal(await rearmed, time.now() + 3_750, 'the wake-up is the row’s new due time');
    // Back before its due time: the health check sees it return and drains its rows at once.
    await fleet.restart(0);
    const drained = nextPass();
    time.advance(3_750);
    assert.deepEqual([(await drained).attempted, (await drained).confirmed], [1, 1]);
    assert.equal(existsSync(path), false);
    await worker.stop();
    assert.deepEqual(time.pending(), []);
  });
});

test('a stop that lands while the scheduler reads the next due time arms nothing', async () => {
  await withFleet(1, async (fleet) => {
    const time = virtualTime(Date.now());
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let reading: () => void = () => undefined;
    const read = new Promise<void>((resolve) => {
      reading = resolve;
    });
    // The store, but its due-time read waits until the test lets it answer.
    const store = new Proxy(fleet.store, {
      get(target, property, receiver) {
        if (property === 'nextDeletionDueAt') {
          return async () => {
            reading();
            await held;
            return target.nextDeletionDueAt();
          };
        }
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const { worker } = startWorker(timedDeps(fleet, time, store), time);
    worker.start();
    await read;
    const stopped = worker.stop();
    release();
    await stopped;
    assert.deepEqual(time.pending(), [], 'no wake-up armed after stop: serve would linger and tick on a closed store');
  });
});

test('a database that does not answer the due-time read is reported, and asked again a health interval later', async () => {
  await withFleet(1, async (fleet) => {
    const time = virtualTime(Date.now());
    let failures = 1;
    // The store, but its first due-time read fails as a dropped connection makes it fail.
    const store = new Proxy(fleet.store, {
      get(target, property, receiver) {
        if (property === 'nextDeletionDueAt') {
          return async () => {
            if (failures-- > 0) throw new Error('terminating connection due to administrator command');
            return target.nextDeletionDueAt();
          };
        }
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const errors: unknown[] = [];
    const worker = createRetryWorker(timedDeps(fleet, time, store), {
      healthIntervalMs: HEALTH_MS,
      timers: time.timers,
      onError: (error) => errors.push(error),
    });
    const armed = time.nextArmed();
    worker.start();
    assert.equal(await armed, time.now() + HEALTH_MS, 'the next look is armed a health interval away');
    assert.deepEqual(
      errors.map((error) => (error as Error).message),
      ['terminating connection due to administrator command'],
    );
    await worker.stop();
  });
});

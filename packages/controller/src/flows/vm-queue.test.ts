// The lock table flows run under, and the keys they take: who waits for whom. A run waits exactly when the queue
// says so at its claim (onWait), so every case here is decided without timers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stateKeys, vmKey, wholeHost } from './lock-keys.js';
import { createVmQueue, type LockKey } from './vm-queue.js';

const HOST = '11111111-1111-4111-8111-111111111111';
const OTHER_HOST = '22222222-2222-4222-8222-222222222222';
const VM = '33333333-3333-4333-8333-333333333333';
const ROOT = '/var/lib/libvirt/swtpm';

interface Held {
  /** resolves once the run holds its keys */
  readonly running: Promise<void>;
  readonly finished: Promise<void>;
  readonly release: () => void;
}

/** A queue that records each run that has to wait, and the order runs start in. */
function recorded(): {
  waited: string[];
  started: string[];
  hold: (name: string, keys: LockKey[]) => Held;
} {
  const waited: string[] = [];
  const started: string[] = [];
  let current = '';
  const queue = createVmQueue({ onWait: () => waited.push(current) });
  const hold = (name: string, keys: LockKey[]): Held => {
    let release: () => void = () => undefined;
    let run: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    const running = new Promise<void>((resolve) => (run = resolve));
    current = name;
    const finished = queue.run(keys, async () => {
      started.push(name);
      run();
      await released;
    });
    return { running, finished, release };
  };
  return { waited, started, hold };
}

test('exclusive holders of a key run one at a time, in the order they claimed it', async () => {
  const { waited, started, hold } = recorded();
  const a = hold('a', [vmKey(VM)]);
  const b = hold('b', [vmKey(VM)]);
  const c = hold('c', [vmKey(VM)]);
  assert.deepEqual(waited, ['b', 'c']);
  a.release();
  await a.finished;
  b.release();
  c.release();
  await Promise.all([b.finished, c.finished]);
  assert.deepEqual(started, ['a', 'b', 'c']);
});

test('shared holders run together; an exclusive claim waits for them, and later shared claims wait for it', async () => {
  const { waited, started, hold } = recorded();
  const shared = (name: string): Held => hold(name, [{ key: 'k', mode: 'shared' }]);
  const s1 = shared('s1');
  const s2 = shared('s2');
  const x = hold('x', [{ key: 'k', mode: 'exclusive' }]);
  const s3 = shared('s3');
  assert.deepEqual(waited, ['x', 's3']);
  await Promise.all([s1.running, s2.running]);
  s2.release();
  s1.release();
  await x.running;
  assert.deepEqual(started, ['s1', 's2', 'x'], 'x runs once both shared holders let go, s3 not while x does');
  x.release();
  s3.release();
  await Promise.all([x.finished, s3.finished]);
  assert.deepEqual(started, ['s1', 's2', 'x', 's3']);
});

test('a key named shared and exclusive in one run is held exclusive', async () => {
  const { waited, hold } = recorded();
  const a = hold('a', [
    { key: 'k', mode: 'shared' },
    { key: 'k', mode: 'exclusive' },
  ]);
  const b = hold('b', [{ key: 'k', mode: 'shared' }]);
  assert.deepEqual(waited, ['b']);
  a.release();
  b.release();
  await Promise.all([a.finished, b.finished]);
});

test('a state and a state inside it are serialized; states side by side and on other hosts are not', async () => {
  const { waited, hold } = recorded();
  const dir = `${ROOT}/${VM}`;
  const outer = hold('outer', stateKeys(HOST, 'TpmState', dir));
  const inner = hold('inner', stateKeys(HOST, 'TpmState', `${dir}/tpm2/tpm2-00.permall`));
  const sibling = hold('sibling', stateKeys(HOST, 'TpmState', `${ROOT}/44444444-4444-4444-8444-444444444444`));
  const elsewhere = hold('elsewhere', stateKeys(OTHER_HOST, 'TpmState', dir));
  const nvram = hold('nvram', stateKeys(HOST, 'NvRam', '/var/lib/libvirt/qemu/nvram/vm_VARS.fd'));
  assert.deepEqual(waited, ['inner']);
  for (const run of [outer, inner, sibling, elsewhere, nvram]) run.release();
  await Promise.all([outer, inner, sibling, elsewhere, nvram].map((run) => run.finished));

  // The other way round: the inner state first, then its directory.
  const { waited: again, hold: holdAgain } = recorded();
  const first = holdAgain('inner', stateKeys(HOST, 'TpmState', `${dir}/tpm2/tpm2-00.permall`));
  const second = holdAgain('outer', stateKeys(HOST, 'TpmState', dir));
  assert.deepEqual(again, ['outer']);
  first.release();
  second.release();
  await Promise.all([first.finished, second.finished]);
});

test('a whole-host flow waits for every flow on a state of the host, and they for it', async () => {
  const { waited, started, hold } = recorded();
  const write = hold('write', [vmKey(VM), ...stateKeys(HOST, 'NvRam', '/nvram/vm_VARS.fd')]);
  const reconcile = hold('reconcile', [wholeHost(HOST)]);
  const retry = hold('retry', stateKeys(HOST, 'TpmState', `${ROOT}/x`));
  const otherHost = hold('other host', [wholeHost(OTHER_HOST)]);
  assert.deepEqual(waited, ['reconcile', 'retry']);
  write.release();
  await write.finished;
  reconcile.release();
  await reconcile.finished;
  retry.release();
  otherHost.release();
  await Promise.all([retry.finished, otherHost.finished]);
  assert.deepEqual(started, ['write', 'other host', 'reconcile', 'retry']);
});

test('two runs naming the same keys in opposite orders never deadlock', async () => {
  const queue = createVmQueue();
  const [a, b] = [stateKeys(HOST, 'NvRam', '/n/a_VARS.fd'), stateKeys(HOST, 'NvRam', '/n/b_VARS.fd')];
  const order: string[] = [];
  await Promise.all([
    queue.run([vmKey(VM), ...a, ...b], async () => {
      order.push('first');
      await Promise.resolve();
    }),
    queue.run([...b, ...a, vmKey(VM)], async () => {
      order.push('second');
      await Promise.resolve();
    }),
  ]);
  assert.deepEqual(order, ['first', 'second']);
});

test('a run that throws lets its keys go', async () => {
  const queue = createVmQueue();
  await assert.rejects(
    queue.run([vmKey(VM)], () => Promise.reject(new Error('boom'))),
    /boom/,
  );
  assert.equal(await queue.run([vmKey(VM)], () => Promise.resolve('next')), 'next');
});

test('keys are plain strings of the host, type and path: the same in every process', () => {
  assert.deepEqual(stateKeys(HOST, 'NvRam', '/nvram/vm_VARS.fd'), [
    { key: `host:${HOST}`, mode: 'shared' },
    { key: `path:${HOST}:NvRam:/nvram/vm_VARS.fd`, mode: 'exclusive' },
    { key: `path:${HOST}:NvRam:/nvram`, mode: 'shared' },
    { key: `path:${HOST}:NvRam:/`, mode: 'shared' },
  ]);
  assert.deepEqual(vmKey(VM), { key: `vm:${VM}`, mode: 'exclusive' });
  assert.deepEqual(wholeHost(HOST), { key: `host:${HOST}`, mode: 'exclusive' });
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createKeyedLock } from './keyed-lock.js';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('one key runs one at a time in call order; other keys run alongside', async () => {
  const lock = createKeyedLock();
  const events: string[] = [];
  const job = (key: string, name: string) =>
    lock(key, async () => {
      events.push(`${name}+`);
      await tick();
      await tick();
      events.push(`${name}-`);
      return name;
    });
  const results = await Promise.all([job('a', 'a1'), job('a', 'a2'), job('b', 'b1'), job('a', 'a3')]);
  assert.deepEqual(results, ['a1', 'a2', 'b1', 'a3']);
  const a = events.filter((e) => e.startsWith('a'));
  assert.deepEqual(a, ['a1+', 'a1-', 'a2+', 'a2-', 'a3+', 'a3-'], 'never two holders of a at once');
  assert.ok(events.indexOf('b1+') < events.indexOf('a1-'), 'b ran while a1 held a');
});

test('a holder that throws releases the key', async () => {
  const lock = createKeyedLock();
  await assert.rejects(
    lock('k', () => Promise.reject(new Error('boom'))),
    /boom/,
  );
  assert.equal(await lock('k', () => Promise.resolve(7)), 7);
});

test('a caller that gives up while it waits never runs, and those behind it wait only for the holder', async () => {
  const lock = createKeyedLock();
  const events: string[] = [];
  let release = (): void => undefined;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  const holder = lock('k', async () => {
    events.push('holder+');
    await held;
    events.push('holder-');
  });
  const waiting = new AbortController();
  const gaveUp = lock(
    'k',
    () => {
      events.push('gave-up ran');
      return Promise.resolve();
    },
    waiting.signal,
  );
  const next = lock('k', () => {
    events.push('next');
    return Promise.resolve();
  });
  await tick();
  const reason = new Error('out of time');
  waiting.abort(reason);
  await assert.rejects(gaveUp, (error) => error === reason);
  assert.deepEqual(events, ['holder+'], 'rejected while the holder still held the key');
  release();
  await Promise.all([holder, next]);
  assert.deepEqual(events, ['holder+', 'holder-', 'next']);

  const aborted = AbortSignal.abort(reason);
  await assert.rejects(
    lock('k', () => Promise.resolve(events.push('never')), aborted),
    (error) => error === reason,
  );
  const started = new AbortController();
  const result = lock(
    'k',
    async () => {
      started.abort();
      await tick();
      return 'ran to its end';
    },
    started.signal,
  );
  assert.equal(await result, 'ran to its end', 'an abort after its turn came is run’s to heed');
  assert.equal(await lock('k', () => Promise.resolve('free')), 'free');
  assert.ok(!events.includes('never') && !events.includes('gave-up ran'));
});

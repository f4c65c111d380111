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

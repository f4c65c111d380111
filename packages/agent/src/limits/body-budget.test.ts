// The budget of body bytes in flight: its two tiers, and claims that give back exactly what they took, once.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createBodyBudget as create, minimumBudget, SMALL_BODY_BYTES } from './body-budget.js';

const MIB = 1024 * 1024;
const createBodyBudget = (limit: number, largeBytesPerSecond = 64 * MIB, now = () => 0) =>
  create({ limit, largeBytesPerSecond, now });

describe('body budget', () => {
  it('lets large bodies fill 3/4 of it and small ones the rest', () => {
    const budget = createBodyBudget(8 * MIB);
    const large = [budget.open(), budget.open(), budget.open()];
    for (const claim of large) assert.equal(claim.take(2 * MIB), true);
    assert.equal(budget.open().take(SMALL_BODY_BYTES + 1), false, 'a fourth large body would pass 6 MiB');
    const small = Array.from({ length: 32 }, () => budget.open());
    for (const claim of small) assert.equal(claim.take(SMALL_BODY_BYTES), true);
    assert.equal(budget.inFlight(), 8 * MIB);
    assert.equal(budget.open().take(1), false, 'full');
    for (const claim of [...large, ...small]) claim.release();
    assert.equal(budget.inFlight(), 0);
  });

  it('counts a body that grows past the small size as large from then on', () => {
    const budget = createBodyBudget(4 * MIB);
    const big = budget.open();
    assert.equal(big.take(3 * MIB), true);
    const growing = budget.open();
    assert.equal(growing.take(SMALL_BODY_BYTES), true);
    assert.equal(growing.take(SMALL_BODY_BYTES), false, 'now large, and large bodies hold 3 MiB already');
    assert.equal(growing.held, SMALL_BODY_BYTES, 'a refused take takes nothing');
    big.release();
    growing.release();
    assert.equal(budget.inFlight(), 0);
  });

  it('gives back once, however often released', () => {
    const budget = createBodyBudget(MIB);
    const a = budget.open();
    const b = budget.open();
    a.take(1000);
    b.take(500);
    a.release();
    a.release();
    assert.equal(budget.inFlight(), 500);
    assert.throws(() => a.take(1));
    b.release();
    assert.equal(budget.inFlight(), 0);
  });

  it('fits a maximum body in its minimum', () => {
    const budget = createBodyBudget(minimumBudget(4 * MIB));
    assert.equal(budget.open().take(4 * MIB), true);
    assert.throws(() => createBodyBudget(0), RangeError);
    assert.throws(() => createBodyBudget(MIB, 0), RangeError);
  });

  it('paces large bodies, all together, to their rate, and never small ones', () => {
    let time = 0;
    const budget = createBodyBudget(64 * MIB, 4 * MIB, () => time);
    const small = budget.open();
    small.take(SMALL_BODY_BYTES);
    const [a, b] = [budget.open(), budget.open()];
    a.take(4 * MIB);
    b.take(4 * MIB);
    assert.equal(a.pace(2 * MIB), 0, "a second's worth comes at once");
    assert.equal(b.pace(2 * MIB), 0);
    assert.equal(a.pace(MIB), 250, 'then each waits for the debt of both');
    assert.equal(b.pace(MIB), 500);
    assert.equal(small.pace(10 * MIB), 0, 'small bodies are never held back');
    time += 500;
    assert.equal(a.pace(0), 0, 'the debt paid back');
    time += 10_000;
    assert.equal(b.pace(5 * MIB), 250, 'no more than a second saved up');
  });

  it('hands a large body buffer given back to the next body it fits, and keeps a quarter at most', () => {
    const budget = createBodyBudget(16 * MIB);
    const first = budget.open();
    const big = first.buffer(MIB);
    first.buffer(1024); // small: from Node's own pool, never kept here
    first.release();
    const second = budget.open();
    assert.equal(second.buffer(MIB).buffer, big.buffer, 'the same memory, again');
    assert.notEqual(second.buffer(MIB).buffer, big.buffer, 'handed out once at a time');
    const third = budget.open();
    const tooBig = [third.buffer(3 * MIB), third.buffer(3 * MIB)];
    second.release();
    third.release();
    const fourth = budget.open();
    const reused = [fourth.buffer(3 * MIB), fourth.buffer(3 * MIB)].filter((b) =>
      tooBig.some((t) => t.buffer === b.buffer),
    );
    assert.equal(reused.length, 0, 'the pool keeps at most 4 MiB (two 1 MiB buffers were given back first)');
    assert.equal(fourth.buffer(MIB / 2).buffer.byteLength, MIB, 'one up to twice the size fits');
  });

  it('counts the room of a pooled buffer past what was asked: what the claims hold is the memory they keep', () => {
    const budget = createBodyBudget(8 * MIB);
    const first = budget.open();
    assert.ok(first.take(2 * MIB));
    first.buffer(2 * MIB);
    first.release();
    // A 2 MiB buffer is in the pool; a body of 1.5 MiB gets it, and holds all 2 MiB of it.
    const second = budget.open();
    assert.ok(second.take(1.5 * MIB));
    const reused = second.buffer(1.5 * MIB);
    assert.equal(reused.buffer.byteLength, 2 * MIB);
    assert.equal(second.held, 2 * MIB);
    assert.equal(budget.inFlight(), 2 * MIB);
    second.release();
    assert.equal(budget.inFlight(), 0);
    // When the budget has no room for the rest of it, the body gets a buffer of its own size instead.
    const filler = budget.open();
    assert.ok(filler.take(6 * MIB - 1.5 * MIB));
    const third = budget.open();
    assert.ok(third.take(1.5 * MIB));
    const own = third.buffer(1.5 * MIB);
    assert.equal(own.buffer.byteLength >= 2 * MIB, false, 'not the pooled 2 MiB');
    assert.equal(third.held, 1.5 * MIB);
  });

  it('regrow: the outgrown buffer goes back to the pool and the budget, its bytes copied; no room changes nothing', () => {
    const budget = createBodyBudget(8 * MIB);
    const claim = budget.open();
    assert.ok(claim.take(MIB));
    const first = claim.buffer(MIB);
    first.fill(7);
    const second = claim.regrow(first, MIB, 2 * MIB);
    assert.ok(second !== undefined);
    assert.equal(second.length, 2 * MIB);
    assert.ok(
      second.subarray(0, MIB).every((byte) => byte === 7),
      'the bytes read so far copied',
    );
    assert.equal(claim.held, 2 * MIB, 'the new buffer alone is counted');
    assert.equal(budget.inFlight(), 2 * MIB);
    // The outgrown buffer is the pool's now: the next body of its size gets it.
    const other = budget.open();
    assert.ok(other.take(MIB));
    assert.equal(other.buffer(MIB).buffer, first.buffer, 'given back, not kept by the claim');
    other.release();
    // Large bodies may hold 6 MiB of this budget: 2 MiB held, 8 MiB more cannot be taken even with them given back.
    assert.equal(claim.regrow(second, 2 * MIB, 8 * MIB), undefined);
    assert.equal(claim.held, 2 * MIB, 'unchanged');
    assert.equal(budget.inFlight(), 2 * MIB);
    // A body near the most a large one may hold grows into it: the outgrown buffer no longer counts.
    assert.ok(claim.regrow(second, 2 * MIB, 6 * MIB) !== undefined);
    assert.equal(budget.inFlight(), 6 * MIB);
    claim.release();
    assert.equal(budget.inFlight(), 0);
  });
});

import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openReplayJournal } from './replay-journal.js';

const withDir = (t: { after: (fn: () => void) => void }): string => {
  const dir = mkdtempSync(join(tmpdir(), 'hostfiles-journal-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
};

test('new, retry with the stored answer, replay with other bytes; all of it across a reopen', async (t) => {
  const dir = withDir(t);
  let now = 1_000;
  const journal = await openReplayJournal({ dir, now: () => now });
  assert.equal(journal.check('r1', 'h1').kind, 'new');
  await journal.record('r1', 'h1', 5_000);
  assert.equal(journal.check('r1', 'h2').kind, 'replayed');
  await journal.complete('r1', 'answer-1');
  const retry = journal.check('r1', 'h1');
  assert.equal(retry.kind, 'retry');
  assert.equal(await retry.answer, 'answer-1');
  await journal.record('r2', 'h', 5_000); // begun, never answered: a crash
  await journal.close();

  const reopened = await openReplayJournal({ dir, now: () => now });
  assert.equal(reopened.check('r1', 'h2').kind, 'replayed');
  const again = reopened.check('r1', 'h1');
  assert.equal(again.kind === 'retry' ? await again.answer : 'not a retry', 'answer-1');
  const unanswered = reopened.check('r2', 'h');
  assert.equal(
    unanswered.kind === 'retry' ? await unanswered.answer : 'not a retry',
    undefined,
    'made again, not hung',
  );
  await reopened.close();

  now = 5_000; // forgotten once expired (the time check refuses such a command before the journal is asked)
  const later = await openReplayJournal({ dir, now: () => now });
  assert.equal(later.check('r1', 'h2').kind, 'new');
  await later.close();
  assert.equal(readFileSync(join(dir, 'replay.jsonl'), 'utf8'), '', 'the reopen dropped forgotten entries');
});

test('a retry that arrives while the first run is in flight waits for its answer', async (t) => {
  const journal = await openReplayJournal({ dir: withDir(t), now: () => 0 });
  await journal.record('r', 'h', 10);
  const retry = journal.check('r', 'h');
  assert.equal(retry.kind, 'retry');
  const waited = retry.answer;
  await journal.complete('r', 'late answer');
  assert.equal(await waited, 'late answer');
  await journal.close();
});

test('a torn last line (a crash mid-append) is skipped, the lines before it kept', async (t) => {
  const dir = withDir(t);
  const journal = await openReplayJournal({ dir, now: () => 0 });
  await journal.record('r1', 'h1', 10);
  await journal.close();
  appendFileSync(join(dir, 'replay.jsonl'), '{"r":"r2","h":"h2","f":1');
  const reopened = await openReplayJournal({ dir, now: () => 0 });
  assert.equal(reopened.check('r1', 'other').kind, 'replayed');
  assert.equal(reopened.check('r2', 'h2').kind, 'new');
  await reopened.close();
});

test('record refuses a known request: check and record must not be split by an await', async (t) => {
  const journal = await openReplayJournal({ dir: withDir(t), now: () => 0 });
  await journal.record('r', 'h', 10);
  assert.throws(() => journal.record('r', 'h', 10), /already known/);
  await journal.close();
});

test('a compaction that runs inside the answer append keeps the answer', async (t) => {
  const dir = withDir(t);
  const journal = await openReplayJournal({ dir, now: () => 0, compactEvery: 2 });
  await journal.record('r', 'h', 10); // line 1
  await journal.complete('r', 'the answer'); // line 2: this append compacts
  await journal.close();
  const reopened = await openReplayJournal({ dir, now: () => 0 });
  const retry = reopened.check('r', 'h');
  assert.equal(retry.kind, 'retry');
  assert.equal(await retry.answer, 'the answer');
  await reopened.close();
});

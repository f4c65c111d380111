import assert from 'node:assert/strict';
import {
  appendFileSync,
  constants,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmdirSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { heldSync, settled } from './held-sync.js';
import { openReplayJournal } from './replay-journal.js';

const withDir = (t: { after: (fn: () => void) => void }): string => {
  const dir = mkdtempSync(join(tmpdir(), 'hostfiles-journal-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
};

/** The open flags of this process's fds on `path` (octal in /proc/self/fdinfo). */
function flagsOfFdsOn(path: string): number[] {
  const flags: number[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // the fd of the listing itself, closed by now
    }
    if (target !== path) continue;
    const line = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').match(/^flags:\s+([0-7]+)$/m);
    if (line?.[1] !== undefined) flags.push(parseInt(line[1], 8));
  }
  return flags;
}

test('each group is written O_DSYNC: durable when its one write returns, no fdatasync after it', async (t) => {
  const dir = withDir(t);
  const journal = await openReplayJournal({ dir, now: () => 0 });
  await journal.record('r1', 'h1', 5_000);
  const flags = flagsOfFdsOn(join(dir, 'replay.jsonl'));
  await journal.close();
  assert.equal(flags.length, 1, 'one fd open on the journal');
  assert.equal((flags[0] ?? 0) & constants.O_DSYNC, constants.O_DSYNC);
  assert.equal((flags[0] ?? 0) & constants.O_APPEND, constants.O_APPEND);
});

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

const journalFile = (dir: string): string => join(dir, 'replay.jsonl');
const recordLine = (id: string, forgetAt: number): string => JSON.stringify({ r: id, h: 'h', f: forgetAt });
const answerLine = (id: string, answer: string): string => JSON.stringify({ r: id, a: answer });
const lineCount = (text: string): number => text.split('\n').length - 1;

test('compaction: after compactEvery lines the file holds exactly the live entries, and appends go on after them', async (t) => {
  const dir = withDir(t);
  let now = 0;
  const journal = await openReplayJournal({ dir, now: () => now, compactEvery: 6 });
  for (const id of ['old1', 'old2']) {
    await journal.record(id, 'h', 10);
    await journal.complete(id, `answer ${id}`);
  }
  now = 10; // old1 and old2 expire: the next compaction forgets them
  await journal.record('live', 'h', 100); // line 5: under the threshold, nothing rewritten yet
  const before = readFileSync(journalFile(dir), 'utf8');
  assert.equal(lineCount(before), 5, 'appended, not compacted, before the threshold');
  assert.equal(journal.check('old1', 'other').kind, 'replayed', 'still in memory until a compaction');

  await journal.complete('live', 'answer live'); // line 6: compacts
  const after = readFileSync(journalFile(dir), 'utf8');
  assert.equal(after, `${recordLine('live', 100)}\n${answerLine('live', 'answer live')}\n`);
  assert.ok(statSync(journalFile(dir)).size < Buffer.byteLength(before), 'the file shrank');
  assert.equal(journal.check('old1', 'other').kind, 'new', 'forgotten in memory too');

  await journal.record('next', 'h', 100); // the count starts again: appended to the compacted file
  assert.equal(readFileSync(journalFile(dir), 'utf8'), `${after}${recordLine('next', 100)}\n`);
  await journal.close();
});

test('record refuses a known request: check and record must not be split by an await', async (t) => {
  const journal = await openReplayJournal({ dir: withDir(t), now: () => 0 });
  await journal.record('r', 'h', 10);
  assert.throws(() => journal.record('r', 'h', 10), /already known/);
  await journal.close();
});

test('a compaction that runs inside the answer append keeps the answer', async (t) => {
  const dir = withDir(t);
  let now = 0;
  const journal = await openReplayJournal({ dir, now: () => now, compactEvery: 3 });
  await journal.record('gone', 'h', 5); // line 1: expired by the time the compaction runs
  now = 5;
  await journal.record('r', 'h', 10); // line 2
  await journal.complete('r', 'the answer'); // line 3: this append compacts
  // The expired line gone is what shows the compaction ran; the answer line kept is what this test is for.
  assert.equal(readFileSync(journalFile(dir), 'utf8'), `${recordLine('r', 10)}\n${answerLine('r', 'the answer')}\n`);
  await journal.close();
  const reopened = await openReplayJournal({ dir, now: () => now });
  const retry = reopened.check('r', 'h');
  assert.equal(retry.kind, 'retry');
  assert.equal(await retry.answer, 'the answer');
  await reopened.close();
});

const eio = (): Error => Object.assign(new Error('EIO: i/o error, fdatasync'), { errno: -5, code: 'EIO' });

test('group commit: records that arrive while a sync is in flight share the next one; each waits for its own', async (t) => {
  const dir = withDir(t);
  const held = heldSync();
  const journal = await openReplayJournal({ dir, now: () => 0, sync: held.sync });
  const first = journal.record('r0', 'h', 10);
  const sync1 = await held.call(1);
  const later = ['r1', 'r2', 'r3', 'r4'].map((id) => journal.record(id, 'h', 10));
  assert.equal(await settled(first), false, 'a record is not durable before its sync');
  sync1.release();
  await first;
  const sync2 = await held.call(2);
  for (const record of later) assert.equal(await settled(record), false, 'each waits for the sync covering it');
  sync2.release();
  await Promise.all(later);
  // Answers of some requests and the record of a new one, arriving together: one sync again.
  const together = [journal.complete('r0', 'a0'), journal.complete('r1', 'a1'), journal.record('r5', 'h', 10)];
  (await held.call(3)).release();
  await Promise.all(together);
  assert.equal(held.count(), 3, 'eight lines, three fdatasyncs');
  await journal.close();

  const reopened = await openReplayJournal({ dir, now: () => 0 });
  for (const id of ['r2', 'r3', 'r4', 'r5']) assert.equal(reopened.check(id, 'other').kind, 'replayed');
  const retry = reopened.check('r1', 'h');
  assert.equal(retry.kind === 'retry' ? await retry.answer : 'not a retry', 'a1');
  await reopened.close();
});

test('group commit: a failed sync rejects exactly the records it covered and forgets them; the next group goes on', async (t) => {
  const dir = withDir(t);
  const held = heldSync();
  const journal = await openReplayJournal({ dir, now: () => 0, sync: held.sync });
  const covered = [journal.record('a', 'h', 10), journal.record('b', 'h', 10)];
  const sync1 = await held.call(1);
  const next = journal.record('c', 'h', 10);
  sync1.fail(eio());
  for (const record of covered) await assert.rejects(record, /EIO/);
  assert.equal(journal.check('a', 'other').kind, 'new', 'not durable, so never run: forgotten');
  assert.equal(journal.check('b', 'other').kind, 'new');
  assert.equal(await settled(next), false, 'the record queued behind it waits for a sync of its own');
  (await held.call(2)).release();
  await next;
  assert.equal(journal.check('c', 'other').kind, 'replayed');
  const retried = journal.record('a', 'h', 10); // a retry of a forgotten request records it anew
  (await held.call(3)).release();
  await retried;
  await journal.close();

  const reopened = await openReplayJournal({ dir, now: () => 0 });
  for (const id of ['a', 'c']) assert.equal(reopened.check(id, 'other').kind, 'replayed');
  // b's line was written though its sync failed: after a restart it is in doubt (an apply is refused), never new.
  const doubt = reopened.check('b', 'h');
  assert.equal(doubt.kind === 'retry' ? await doubt.answer : 'not a retry', undefined);
  await reopened.close();
});

test('group commit: after a failed group the next one starts on a line of its own', async (t) => {
  const dir = withDir(t);
  const held = heldSync();
  const journal = await openReplayJournal({ dir, now: () => 0, sync: held.sync });
  const cut = journal.record('a', 'h', 10);
  const sync1 = await held.call(1);
  appendFileSync(join(dir, 'replay.jsonl'), '{"r":"x","h":"h'); // what a write cut short by a full disk leaves
  sync1.fail(eio());
  await assert.rejects(cut, /EIO/);
  const next = journal.record('b', 'h', 10);
  (await held.call(2)).release();
  await next;
  await journal.close();
  const reopened = await openReplayJournal({ dir, now: () => 0 });
  assert.equal(reopened.check('b', 'other').kind, 'replayed', 'not glued to the torn line, so not lost');
  await reopened.close();
});

test('group commit: compactions between groups keep every record and answer', async (t) => {
  const dir = withDir(t);
  const journal = await openReplayJournal({ dir, now: () => 0, compactEvery: 3 });
  const ids = Array.from({ length: 10 }, (_, i) => `r${i}`);
  await Promise.all(ids.map((id) => journal.record(id, 'h', 10)));
  const answers = ids.map((id) => journal.complete(id, `answer ${id}`));
  const late = journal.record('late', 'h', 10); // queued while the group before it compacts
  await Promise.all([...answers, late]);
  await journal.close();
  const reopened = await openReplayJournal({ dir, now: () => 0 });
  for (const id of ids) {
    const retry = reopened.check(id, 'h');
    assert.equal(retry.kind === 'retry' ? await retry.answer : 'not a retry', `answer ${id}`);
  }
  assert.equal(reopened.check('late', 'other').kind, 'replayed');
  await reopened.close();
});

test('a failed record rolls back: forgotten, a retry waiting on it released without an answer, its id free again', async (t) => {
  const dir = withDir(t);
  const held = heldSync();
  const journal = await openReplayJournal({ dir, now: () => 0, sync: held.sync });
  const recorded = journal.record('a', 'h', 10);
  const waiting = journal.check('a', 'h'); // a retry of the same bytes that arrived while the record was syncing
  assert.equal(waiting.kind, 'retry');
  (await held.call(1)).fail(eio());
  await assert.rejects(recorded, /EIO/);
  const answer = waiting.answer;
  assert.equal(await settled(answer), true, 'the waiting retry is not left hanging');
  assert.equal(await answer, undefined, 'no answer: the request never ran');
  assert.equal(journal.check('a', 'h').kind, 'new', 'the in-memory record is gone');
  const again = journal.record('a', 'h', 10);
  (await held.call(2)).release();
  await again;
  await journal.close();
});

test('a failed compaction leaves the journal appending to the file it had, every line kept', async (t) => {
  const dir = withDir(t);
  const journal = await openReplayJournal({ dir, now: () => 0, compactEvery: 2 });
  const temp = `${journalFile(dir)}.tmp`;
  mkdirSync(temp); // the rewrite's temp file cannot be made: the compaction fails with EISDIR
  await journal.record('a', 'h', 10); // line 1
  // Line 2 is durable, but its group's compaction failed, so its caller hears the failure.
  await assert.rejects(journal.complete('a', 'answer a'), /EISDIR/);
  await journal.record('b', 'h', 10); // appended to the same file, reopened
  const kept = `${recordLine('a', 10)}\n${answerLine('a', 'answer a')}\n`;
  // After any failed group the next starts on a line of its own (group-commit.ts): the empty line is that.
  assert.equal(readFileSync(journalFile(dir), 'utf8'), `${kept}\n${recordLine('b', 10)}\n`);
  rmdirSync(temp);
  await journal.record('c', 'h', 10); // the next compaction succeeds, nothing expired: every entry, rewritten
  assert.equal(readFileSync(journalFile(dir), 'utf8'), `${kept}${recordLine('b', 10)}\n${recordLine('c', 10)}\n`);
  await journal.close();
});

// Remembers every requestId with the SHA-256 of its payload bytes until the command expires, across restarts.
// A repeat with the same bytes is a retry (answered from the journal); with other bytes, a replay (refused).
import { open, readFile, rename, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { openSync, fsyncSync, closeSync, constants } from 'node:fs';
import { createGroupCommit } from './group-commit.js';

export type JournalLookup =
  | { readonly kind: 'new' }
  | { readonly kind: 'replayed' }
  /** Same bytes seen before: `answer` is the stored answer, or undefined when none was stored (see signed.ts). */
  | { readonly kind: 'retry'; readonly answer: Promise<string | undefined> };

export interface ReplayJournal {
  /** What the journal knows of this request; no side effect. */
  check(requestId: string, payloadHash: string): JournalLookup;
  /**
   * Records a request `check` called new. The in-memory record is made before this returns, so a caller that
   * calls `check` then `record` with no await between them can't let two concurrent requests both be new.
   * The promise settles once the record is durable: after the fdatasync of the group it was written in, which it
   * shares with the lines of the other requests that arrived meanwhile (group commit).
   */
  record(requestId: string, payloadHash: string, forgetAt: number): Promise<void>;
  /**
   * Stores the answer of a begun request (`undefined`: don't store it, e.g. file contents of a read); settles once
   * it is durable, as `record` does. The caller answers only then (DESIGN.md, the replay journal). `applied`: what
   * must also be done before anyone hears the answer (the last fsyncs of the request's ops, which this line's sync
   * runs alongside): a retry is given the answer only once it is, and none (in doubt) if it fails.
   */
  complete(requestId: string, answer: string | undefined, applied?: Promise<void>): Promise<void>;
  /** The journal file's size in bytes now (a metric: one stat, read when asked). */
  size(): Promise<number>;
  close(): Promise<void>;
}

interface Entry {
  readonly hash: string;
  readonly forgetAt: number;
  /** what a retry is given, once it may be */
  answer: Promise<string | undefined>;
  settle: (answer: string | undefined) => void;
  /** the answer as the journal file holds it (a compaction rewrites it) */
  stored?: string;
}

type Line = { r: string; h: string; f: number } | { r: string; a: string };

const FILE = 'replay.jsonl';
const DSYNC_APPEND = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_DSYNC;
/** Rewrite the file without forgotten entries once this many lines were appended since the last rewrite. */
const COMPACT_EVERY = 20_000;

export interface JournalOptions {
  readonly dir: string;
  readonly now: () => number;
  /** lines appended between two rewrites (default 20,000); tests make it small */
  readonly compactEvery?: number;
  /**
   * Tests only: the fdatasync of the journal file (to count, hold or fail it). Without it, each group's write is
   * synchronous (O_DSYNC) and there is no fdatasync.
   */
  readonly sync?: (handle: FileHandle) => Promise<void>;
}

export async function openReplayJournal(options: JournalOptions): Promise<ReplayJournal> {
  const path = join(options.dir, FILE);
  const entries = await load(path, options.now());
  await rewrite(path, entries);
  // Undefined from a compaction's close until the next group opens the file again: the rewritten one, or the old one
  // when the rewrite failed, so a failed compaction never leaves the journal without a file to append to.
  // O_DSYNC: a group's write returns once its lines are durable, as write(2) then fdatasync(2) would make them, in one
  // trip through the thread pool instead of two. A test that holds or fails the fdatasync opens it without.
  const { sync } = options;
  const flags = sync === undefined ? DSYNC_APPEND : 'a';
  let handle: FileHandle | undefined = await open(path, flags, 0o600);
  const opened = async (): Promise<FileHandle> => (handle ??= await open(path, flags, 0o600));
  let appended = 0;
  // Lines are appended in groups, one durable write each (group-commit.ts): never interleaved, and a compaction runs
  // between two groups, never during one. A failed group fails its own callers only, or one full disk would wedge
  // every later request until a restart.
  const writer = createGroupCommit({
    write: async (text) => (await opened()).appendFile(text),
    sync: async () => {
      if (sync !== undefined) await sync(await opened());
    },
    afterSync: async (lines) => {
      appended += lines;
      if (appended < (options.compactEvery ?? COMPACT_EVERY)) return;
      appended = 0;
      forgetExpired(entries, options.now());
      const closing = await opened();
      handle = undefined;
      await closing.close();
      await rewrite(path, entries);
    },
  });
  const append = (line: Line): Promise<void> => writer.append(JSON.stringify(line));

  return {
    check(requestId, payloadHash) {
      const known = entries.get(requestId);
      if (known === undefined) return { kind: 'new' };
      return known.hash === payloadHash ? { kind: 'retry', answer: known.answer } : { kind: 'replayed' };
    },
    record(requestId, payloadHash, forgetAt) {
      if (entries.has(requestId)) throw new Error(`record() of a request already known: ${requestId}`);
      const entry = newEntry(payloadHash, forgetAt);
      entries.set(requestId, entry);
      return append({ r: requestId, h: payloadHash, f: forgetAt }).catch((error: unknown) => {
        // Not durable, so not applied: forget it, and let a retry that waits on it run anew.
        entries.delete(requestId);
        entry.settle(undefined);
        throw error;
      });
    },
    async complete(requestId, answer, applied = Promise.resolve()) {
      const entry = entries.get(requestId);
      if (entry === undefined) throw new Error(`complete() of a request never begun: ${requestId}`);
      // In memory first: a compaction that runs inside the append below must already see the answer.
      if (answer !== undefined) entry.stored = answer;
      // `applied` fails only on a bug (an fsync's own failure is logged, not thrown): a retry in this process is then
      // refused as in doubt, while the line below, once written, still gives it after a restart — the change it
      // reports was made, only its last fsyncs' outcome is unknown.
      const given = applied.then(
        () => answer,
        () => undefined,
      );
      entry.answer = given;
      void given.then(entry.settle);
      if (answer !== undefined) await append({ r: requestId, a: answer });
    },
    size: async () => (await stat(path)).size,
    async close() {
      await writer.drain();
      await handle?.close();
      handle = undefined;
    },
  };
}

function newEntry(hash: string, forgetAt: number, answer?: string): Entry {
  let settle: (answer: string | undefined) => void = () => undefined;
  const promise =
    answer === undefined
      ? new Promise<string | undefined>((resolve) => {
          settle = resolve;
        })
      : Promise.resolve(answer);
  return { hash, forgetAt, answer: promise, settle, ...(answer === undefined ? {} : { stored: answer }) };
}

async function load(path: string, now: number): Promise<Map<string, Entry>> {
  const entries = new Map<string, Entry>();
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return entries;
    throw error;
  }
  for (const raw of text.split('\n')) {
    const line = parseLine(raw);
    if (line === undefined) continue; // a torn last line of a crash: its request was never applied
    if ('h' in line) {
      if (line.f > now) entries.set(line.r, newEntry(line.h, line.f));
    } else {
      const entry = entries.get(line.r);
      if (entry !== undefined) entries.set(line.r, newEntry(entry.hash, entry.forgetAt, line.a));
    }
  }
  // A request begun but never answered before a restart is in doubt: its waiters get `undefined` (see signed.ts).
  for (const entry of entries.values()) entry.settle(undefined);
  return entries;
}

function parseLine(raw: string): Line | undefined {
  if (raw === '') return undefined;
  try {
    const value = JSON.parse(raw) as Partial<{ r: unknown; h: unknown; f: unknown; a: unknown }>;
    if (typeof value.r !== 'string') return undefined;
    if (typeof value.h === 'string' && typeof value.f === 'number') return { r: value.r, h: value.h, f: value.f };
    if (typeof value.a === 'string') return { r: value.r, a: value.a };
  } catch {
    return undefined;
  }
  return undefined;
}

function forgetExpired(entries: Map<string, Entry>, now: number): void {
  for (const [id, entry] of entries) if (entry.forgetAt <= now) entries.delete(id);
}

/** Writes the live entries to a temp file, fsyncs it, renames it over the journal and fsyncs the directory. */
async function rewrite(path: string, entries: Map<string, Entry>): Promise<void> {
  const lines: string[] = [];
  for (const [id, entry] of entries) {
    lines.push(JSON.stringify({ r: id, h: entry.hash, f: entry.forgetAt }));
    if (entry.stored !== undefined) lines.push(JSON.stringify({ r: id, a: entry.stored }));
  }
  const temp = `${path}.tmp`;
  const handle = await open(temp, 'w', 0o600);
  try {
    await handle.write(lines.length === 0 ? '' : `${lines.join('\n')}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, path);
  const dir = openSync(join(path, '..'), constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

// list, stat and busy: facts of units (a file or a directory state) without their contents.
import { MAX_LISTED_NAMES, type FileType, type ListEntry, type Logger } from '@hostfiles/shared';
import type { DirHandle } from './dir-handle.js';
import { closeAll, errnoOrThrow, nth } from './fd-path.js';
import { FileStoreError } from './file-store-error.js';
import type { ReadLockedInodes } from './locks.js';
import { failed, HARD_LINKED_FAILURE, ioFailure, SYMLINK_FAILURE } from './op-failure.js';
import { openRoot, type RootDir } from './root-dir.js';
import { MAX_HASHED_BYTES } from './stream-file.js';
import { swtpmRunsOn, type SwtpmStates } from './swtpm-open.js';
import { factsOf, hasOtherLinks, inspect, isBusy, type Target } from './target.js';
import { isTempName, parseRoleName } from './temp-name.js';
import { namesOf } from './tree-walk.js';
import type { BusyState, OpFailure, StatState, StoreEvent } from './types.js';
import { walkDirs } from './walk.js';

const ABSENT = Object.freeze({ status: 'absent' } as const);
const NOT_A_FILE = failed('not_regular_file', 'the target is not a regular file or a directory');

/**
 * Runs `describe` for one unit while no op changes it (the store's unit lock). Aborted while it waits for the lock
 * (an op on the unit holds it until its fsyncs are done), it rejects with the signal's reason and never describes.
 */
export type UnitGuard = <T>(name: string, describe: () => Promise<T>, signal?: AbortSignal) => Promise<T>;

export async function statUnit(
  root: RootDir,
  components: readonly string[],
  readLocks: ReadLockedInodes,
): Promise<StatState> {
  return onFoundUnit(root, components, async (dir, name, target) => {
    const facts = await factsOf(readLocks, dir, name, target);
    // Vanished or swapped between the look and the hashing.
    if (facts === undefined) return ABSENT;
    return { status: 'present', ...facts, busy: facts.busy || (await swtpmRunsOn(root, components, target)) };
  });
}

/** Whether a lock is held on the unit or below it: stat's walk without reading or digesting any file. */
export async function busyUnit(
  root: RootDir,
  components: readonly string[],
  readLocks: ReadLockedInodes,
): Promise<BusyState> {
  return onFoundUnit(root, components, async (dir, name, target) => ({
    status: 'present',
    kind: target.kind,
    busy: (await isBusy(readLocks, dir, name, target)) || (await swtpmRunsOn(root, components, target)),
  }));
}

/** What `inspect` found that stat and busy describe. */
type FoundTarget = Extract<Target, { readonly kind: 'file' | 'dir' }>;

/**
 * The walk stat and busy share: `describe` runs on a file or directory found at the path without following a link;
 * anything else answers absent or its failure. A file with other links is refused: it may be someone else's file
 * (its content outside the roots), and neither a digest nor a lock state may tell of it.
 */
async function onFoundUnit<T>(
  root: RootDir,
  components: readonly string[],
  describe: (dir: DirHandle, name: string, target: FoundTarget) => Promise<T>,
): Promise<T | typeof ABSENT | OpFailure> {
  const held: DirHandle[] = [];
  try {
    const end = await walkDirs(root, components.slice(0, -1), held);
    if (end === 'symlink') return SYMLINK_FAILURE;
    if (end !== 'ok') return ABSENT;
    const dir = nth(held, held.length - 1);
    const name = nth(components, components.length - 1);
    const target = inspect(dir, name);
    if (target.kind === 'absent') return ABSENT;
    if (target.kind === 'symlink') return SYMLINK_FAILURE;
    if (target.kind === 'other') return NOT_A_FILE;
    if (target.kind === 'file' && hasOtherLinks(target.stats)) return HARD_LINKED_FAILURE;
    return await describe(dir, name, target);
  } catch (error) {
    return ioFailure(error);
  } finally {
    await closeAll(held);
  }
}

/**
 * The most file content one listing hashes, its roots together: 64 GiB, twice a host of 500 VMs with 64 MiB AAVMF
 * stores each. Past it, nothing more is hashed: a root's owner can make thousands of 1 GiB sparse files.
 */
export const MAX_LISTED_BYTES = 64 * 1024 ** 3;

/** What one listing (one `files.list`, all its roots) may still read, and whether it had to leave units out. */
export interface ListBudget {
  /** names read from each root at most */
  readonly names: number;
  /** content bytes one listing hashes at most, its roots together */
  readonly bytes: number;
  /** of them, still to hash */
  bytesLeft: number;
  /** set once a root held more names than `names`, the bytes ran out, or the listing had to stop: units were left out */
  truncated: boolean;
  /**
   * Aborted when nobody waits for the listing any more (its request's connection closed), once `withinMs` have
   * passed since the budget was made, or once `finish` ran: the listing stops there, in the middle of hashing a file
   * if need be (before its next 1 MiB), while it waits for a unit's lock, or before its next unit.
   */
  readonly signal: AbortSignal;
  /** the milliseconds the listing was given (the controller's ANSWER_WITHIN_HEADER), if any */
  readonly withinMs?: number;
  /**
   * Called once the listing is done or has failed: its clock stops (no timer is left behind for `withinMs`), and a
   * root still being listed when another's failed stops too (nobody will read it).
   */
  readonly finish: () => void;
}

/** Why a listing's signal ends when its time is up (told apart from its request being gone). */
const OUT_OF_TIME = new Error('the listing is out of time');
/** Why it ends once the listing is over (a root still going when another failed). */
const FINISHED = new Error('the listing is over');

export function listBudget({
  names = MAX_LISTED_NAMES,
  bytes = MAX_LISTED_BYTES,
  signal,
  withinMs,
}: Partial<Pick<ListBudget, 'names' | 'bytes' | 'signal' | 'withinMs'>> = {}): ListBudget {
  // A controller of its own, ended by whichever comes first. A timer, not AbortSignal.timeout and AbortSignal.any:
  // Node holds a timeout signal without listeners weakly, and one collected before its time never fires (a listing
  // given 1.5 s ran on for 78 s so).
  const ends = new AbortController();
  const gone = (): void => {
    ends.abort(signal?.reason);
  };
  signal?.addEventListener('abort', gone, { once: true });
  if (signal?.aborted === true) gone();
  // The clock starts now, when the listing begins.
  const timer =
    withinMs === undefined
      ? undefined
      : setTimeout(() => {
          ends.abort(OUT_OF_TIME);
        }, withinMs).unref();
  return {
    names,
    bytes,
    bytesLeft: bytes,
    truncated: false,
    signal: ends.signal,
    ...(withinMs === undefined ? {} : { withinMs }),
    finish: () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', gone);
      ends.abort(FINISHED);
    },
  };
}

/** Whether `signal` ended for its time, not because its request was gone. */
const outOfTime = (signal: AbortSignal): boolean => signal.reason === OUT_OF_TIME;

/**
 * One entry per file or directory directly below the root, sorted by path. Symlinks, FIFOs, sockets, temp names
 * and hard-linked files are skipped. A unit in the middle of a replace or a delete is away from its name for a
 * moment (as `new.`, `old.` or `del.<name>`): those names are read as their unit, which is then described under
 * its lock, so a listing never misses a state that is only being replaced.
 * A unit that can't be described (past the walk's limits, an I/O error) is left out and logged (`unit_unlisted`): a
 * listing has no failed entry, and one unit must not fail the listing of all the others. stat answers its error.
 * Past the budget (a root of more names, more content or more time than it allows) the listing stops where it is,
 * marks the budget truncated and logs `listing_truncated`: the units it lists are right, and others may exist. When
 * its request is gone it stops too, marked truncated (nobody reads it), and logs nothing.
 */
export async function listUnits(
  type: FileType,
  root: RootDir,
  { readLocks, logger }: { readonly readLocks: ReadLockedInodes; readonly logger: Logger<StoreEvent> },
  guard: UnitGuard,
  budget: ListBudget = listBudget(),
): Promise<ListEntry[]> {
  const results: ListEntry[] = [];
  // One look at the running swtpms for the whole listing, made when its first file unit asks.
  let swtpms: Promise<SwtpmStates> | undefined;
  const { swtpms: lookNow } = root;
  const look = lookNow === undefined ? undefined : () => (swtpms ??= lookNow());
  const truncate = (reason: 'names' | 'bytes' | 'time'): void => {
    budget.truncated = true;
    const limit = reason === 'names' ? budget.names : reason === 'bytes' ? budget.bytes : budget.withinMs;
    logger.warn('listing_truncated', { type, root: root.path, reason, listed: results.length, limit });
  };
  /** Whether the listing must stop now (its time is up, or nobody waits for it), having marked it truncated. */
  const ended = (): boolean => {
    const signal = budget.signal;
    if (!signal.aborted) return false;
    if (outOfTime(signal)) truncate('time');
    else budget.truncated = true;
    return true;
  };
  try {
    const dir = openRoot(root);
    try {
      const { names, more } = await namesIn(dir, budget.names);
      for (const name of unitNames(names)) {
        // Out of time, or nobody waits for the answer any more (the controller gave up on this attempt).
        if (ended()) return results;
        if (budget.bytesLeft <= 0) {
          truncate('bytes');
          return results;
        }
        const path = `${root.path}/${name}`;
        let facts;
        try {
          facts = await guard(
            name,
            async () => {
              const target = inspect(dir, name);
              const found = await factsOf(readLocks, dir, name, target, budget.signal);
              if (found === undefined || found.busy) return found;
              return (await swtpmRunsOn(root, [name], target, look)) ? { ...found, busy: true } : found;
            },
            budget.signal,
          );
        } catch (error) {
          // Stopped while waiting for the unit's lock or in the middle of its hashing: the unit is left out with the
          // rest, not as a failure. A failure of its own (an I/O error) is one even when the time ran out just after.
          if (error === budget.signal.reason && ended()) return results;
          // A unit that failed may have hashed up to a state's cap (1 GiB) first: it counts as that much.
          budget.bytesLeft -= MAX_HASHED_BYTES;
          logger.warn('unit_unlisted', { type, path, message: ioFailure(error).error.message });
          continue;
        }
        if (facts === undefined) continue;
        budget.bytesLeft -= facts.size;
        results.push({ type, path, ...facts });
      }
      if (more) truncate('names');
    } finally {
      await dir.close();
    }
  } catch (error) {
    const code = errnoOrThrow(error);
    throw new FileStoreError(`cannot list ${root.path}: ${code}`, { code, cause: error });
  }
  return results;
}

/** Up to `max` names of `dir`, read as a stream (a root of millions is never read whole), and whether there are more. */
async function namesIn(dir: DirHandle, max: number): Promise<{ names: string[]; more: boolean }> {
  const names: string[] = [];
  for await (const name of namesOf(dir)) {
    if (names.length === max) return { names, more: true };
    names.push(name);
  }
  return { names, more: false };
}

function unitNames(entries: readonly string[]): string[] {
  const names = new Set<string>();
  for (const entry of entries) {
    if (!isTempName(entry)) names.add(entry);
    else {
      const target = parseRoleName(entry)?.target;
      if (target !== undefined) names.add(target);
    }
  }
  // The order of paths below one root is the order of these names: `${root}/` is common to all.
  return [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

// list, stat and busy: facts of units (a file or a directory state) without their contents.
import { readdir } from 'node:fs/promises';
import type { FileType, ListEntry, Logger } from '@hostfiles/shared';
import type { DirHandle } from './dir-handle.js';
import { closeAll, errnoOrThrow, nth, self } from './fd-path.js';
import { FileStoreError } from './file-store-error.js';
import type { ReadLockedInodes } from './locks.js';
import { failed, HARD_LINKED_FAILURE, ioFailure, SYMLINK_FAILURE } from './op-failure.js';
import { openRoot, type RootDir } from './root-dir.js';
import { factsOf, hasOtherLinks, inspect, isBusy, type Target } from './target.js';
import { isTempName, parseRoleName } from './temp-name.js';
import type { BusyState, OpFailure, StatState, StoreEvent } from './types.js';
import { walkDirs } from './walk.js';

const ABSENT = Object.freeze({ status: 'absent' } as const);
const NOT_A_FILE = failed('not_regular_file', 'the target is not a regular file or a directory');

/** Runs `describe` for one unit while no op changes it (the store's unit lock). */
export type UnitGuard = <T>(name: string, describe: () => Promise<T>) => Promise<T>;

export async function statUnit(
  root: RootDir,
  components: readonly string[],
  readLocks: ReadLockedInodes,
): Promise<StatState> {
  return onFoundUnit(root, components, async (dir, name, target) => {
    const facts = await factsOf(readLocks, dir, name, target);
    // Vanished or swapped between the look and the hashing.
    return facts === undefined ? ABSENT : { status: 'present', ...facts };
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
    busy: await isBusy(readLocks, dir, name, target),
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
 * One entry per file or directory directly below the root, sorted by path. Symlinks, FIFOs, sockets, temp names
 * and hard-linked files are skipped. A unit in the middle of a replace or a delete is away from its name for a
 * moment (as `new.`, `old.` or `del.<name>`): those names are read as their unit, which is then described under
 * its lock, so a listing never misses a state that is only being replaced.
 * A unit that can't be described (past the walk's limits, an I/O error) is left out and logged (`unit_unlisted`): a
 * listing has no failed entry, and one unit must not fail the listing of all the others. stat answers its error.
 */
export async function listUnits(
  type: FileType,
  root: RootDir,
  { readLocks, logger }: { readonly readLocks: ReadLockedInodes; readonly logger: Logger<StoreEvent> },
  guard: UnitGuard,
): Promise<ListEntry[]> {
  const results: ListEntry[] = [];
  try {
    const dir = openRoot(root);
    try {
      for (const name of unitNames(await readdir(self(dir)))) {
        const path = `${root.path}/${name}`;
        let facts;
        try {
          facts = await guard(name, async () => factsOf(readLocks, dir, name, inspect(dir, name)));
        } catch (error) {
          logger.warn('unit_unlisted', { type, path, message: ioFailure(error).error.message });
          continue;
        }
        if (facts !== undefined) results.push({ type, path, ...facts });
      }
    } finally {
      await dir.close();
    }
  } catch (error) {
    const code = errnoOrThrow(error);
    throw new FileStoreError(`cannot list ${root.path}: ${code}`, { code, cause: error });
  }
  return results;
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

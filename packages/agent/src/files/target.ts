// What is at a target now: its kind, its digest, whether it is busy, and its facts for list and stat.
import { lstatSync, type BigIntStats } from 'node:fs';
import { stateDigest, type UnitFacts } from '@hostfiles/shared';
import type { DirHandle } from './dir-handle.js';
import { at } from './fd-path.js';
import type { FreeUnits } from './free-units.js';
import { anyLocked, type ReadLockedInodes } from './locks.js';
import { hashFile, refuseOverCap, stateBudget } from './stream-file.js';
import { openFound, walkState, type StateVisitor } from './state-walk.js';
import { BUSY_WALK, STATE_WALK } from './tree-walk.js';
import { openChildDir } from './walk.js';

export type Target =
  | { readonly kind: 'absent' }
  | { readonly kind: 'symlink' }
  /** a FIFO, socket or device */
  | { readonly kind: 'other' }
  | { readonly kind: 'file' | 'dir'; readonly stats: BigIntStats };

const ABSENT: Target = Object.freeze({ kind: 'absent' });

/**
 * lstat of `name` below the held `dir`: never follows a link. An absent name is an answer, not an error: most looks
 * (leftovers of a replace, a new file's target) find nothing, and an ENOENT thrown and caught cost more than the lstat.
 */
export function inspect(dir: DirHandle, name: string): Target {
  const stats = lstatSync(at(dir, name), { bigint: true, throwIfNoEntry: false });
  if (stats === undefined) return ABSENT;
  if (stats.isSymbolicLink()) return { kind: 'symlink' };
  if (stats.isFile()) return { kind: 'file', stats };
  return stats.isDirectory() ? { kind: 'dir', stats } : { kind: 'other' };
}

/**
 * A file with other hard links is never read, hashed or counted: its content may live outside the roots (a name
 * planted in a state directory by its owner), and a digest of it would tell something of that content.
 */
export const hasOtherLinks = (stats: BigIntStats): boolean => stats.nlink > 1n;

/**
 * Whether a lock is held on the target or on anything below it (its lock file included). Looks at every entry, at
 * any depth (a lock deep in a tree still makes it busy), and stops at the first locked one. A directory is opened and
 * looked at through its fd (isHeldDirBusy, with `free` if given).
 */
export async function isBusy(
  read: ReadLockedInodes,
  dir: DirHandle,
  name: string,
  target: Target,
  free?: FreeUnits,
): Promise<boolean> {
  if (target.kind !== 'file' && target.kind !== 'dir') return false;
  const locked = await read();
  // No lock held anywhere (a host with no VM running): nothing to walk.
  if (locked.size === 0) return false;
  if (locked.has(target.stats.ino.toString())) return true;
  if (target.kind === 'file') return false;
  const held = await openChildDir(dir, name);
  // Gone or swapped for something that is not a directory since the lstat: nothing below it to be busy.
  if (typeof held === 'string') return false;
  try {
    return await isHeldDirBusy(locked, held, free);
  } finally {
    await held.close();
  }
}

/**
 * isBusy of a directory the caller holds (the unit an op walked down through), with the locks it has just read:
 * it is looked at through its held fd, so no lookup by name and no open and close of it again. With `free`, a
 * directory found free under these very locks before is not walked again (free-units.ts).
 */
export async function isHeldDirBusy(locked: ReadonlySet<string>, dir: DirHandle, free?: FreeUnits): Promise<boolean> {
  if (locked.size === 0) return false;
  const stats = await dir.stat({ bigint: true });
  if (locked.has(stats.ino.toString())) return true;
  if (free?.has(locked, stats) === true) return false;
  const found = lockedFinder(locked);
  await walkState(dir, found.visitor, BUSY_WALK);
  if (found.busy()) return true;
  free?.add(locked, stats);
  return false;
}

/** A walk's visitor that stops at the first inode in `locked`, and whether it found one. */
function lockedFinder(locked: ReadonlySet<string>): { readonly visitor: StateVisitor; busy(): boolean } {
  let busy = false;
  return {
    visitor: {
      inode: (ino) => {
        busy = locked.has(ino.toString());
        return busy ? 'stop' : undefined;
      },
    },
    busy: () => busy,
  };
}

/**
 * Facts of a file or directory unit; undefined when it vanished, was swapped, or is a hard-linked file. Once `signal`
 * is aborted, hashing throws its reason before the next chunk (a listing out of time).
 */
export async function factsOf(
  read: ReadLockedInodes,
  dir: DirHandle,
  name: string,
  target: Target,
  signal?: AbortSignal,
): Promise<UnitFacts | undefined> {
  if (target.kind === 'file') return fileFacts(read, dir, name, target.stats, signal);
  if (target.kind !== 'dir') return undefined;
  const inodes = [target.stats.ino];
  const files: { path: string; sha256: string }[] = [];
  let size = 0;
  let mtime = Number(target.stats.mtimeMs);
  let newest: number | undefined;
  // The files' sizes together, counted before each is read: thousands of 1 GiB sparse files are refused at once.
  const count = stateBudget();
  await walkBelow(dir, name, {
    inode: (ino) => {
      inodes.push(ino);
      return undefined;
    },
    file: async (found) => {
      if (hasOtherLinks(found.stats)) return;
      count(found.stats.size);
      const hashed = await hashFound(found, signal);
      if (hashed === undefined) return;
      files.push({ path: found.path, sha256: hashed.sha256 });
      size += hashed.size;
      newest = Math.max(newest ?? 0, Number(found.stats.mtimeMs));
    },
  });
  // The newest file's time; a directory without files has only its own.
  if (newest !== undefined) mtime = newest;
  const busy = await anyLocked(read, inodes);
  return { kind: 'dir', size, sha256: stateDigest(files), mtime: Math.floor(mtime), files: files.length, busy };
}

/** A file's sha256 or a directory's state digest; undefined when there is none to compare (see hasOtherLinks). */
export async function digestOf(dir: DirHandle, name: string, target: Target): Promise<string | undefined> {
  const facts = await factsOf(() => Promise.resolve(new Set<string>()), dir, name, target);
  return facts?.sha256;
}

async function fileFacts(
  read: ReadLockedInodes,
  dir: DirHandle,
  name: string,
  stats: BigIntStats,
  signal: AbortSignal | undefined,
): Promise<UnitFacts | undefined> {
  if (hasOtherLinks(stats)) return undefined;
  const hashed = await hashFound({ dir, name, stats }, signal);
  if (hashed === undefined) return undefined;
  const busy = await anyLocked(read, [stats.ino]);
  return { kind: 'file', ...hashed, mtime: Math.floor(Number(stats.mtimeMs)), files: 1, busy };
}

async function hashFound(
  found: Parameters<typeof openFound>[0],
  signal: AbortSignal | undefined,
): Promise<{ sha256: string; size: number } | undefined> {
  refuseOverCap(found.stats.size);
  const file = await openFound(found);
  if (file === undefined) return undefined;
  try {
    return await hashFile(file, signal);
  } finally {
    await file.close();
  }
}

async function walkBelow(dir: DirHandle, name: string, visitor: StateVisitor, limits = STATE_WALK): Promise<void> {
  const child = await openChildDir(dir, name);
  if (typeof child === 'string') return;
  try {
    await walkState(child, visitor, limits);
  } finally {
    await child.close();
  }
}

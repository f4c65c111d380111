// Opens a held root and the directories below it one by one, never following a symlink.
import { lstatSync } from 'node:fs';
import { mkdir, rmdir } from 'node:fs/promises';
import { openDir, type DirHandle } from './dir-handle.js';
import { at, CHILD_DIR_FLAGS, errnoOrThrow, nth } from './fd-path.js';
import { ownDir } from './ownership.js';
import { openRoot, type RootDir } from './root-dir.js';
import type { RootOwnership } from './types.js';

/** How far a walk got: `ok` means every directory asked for is held. */
export type WalkEnd = 'ok' | 'missing' | 'symlink' | 'not_dir';

/** For writes: missing directories are made (owner and mode per root) and the dirs that gained entries noted. */
export interface MakeDirs {
  readonly ownership: RootOwnership;
  /** Directories in which a directory was made: their entries must be fsynced too. */
  readonly grown: DirHandle[];
}

/**
 * Pushes onto `held` the root and then each of `names`, each opened relative to the one before.
 * `held` belongs to the caller, who closes it whatever happens (also when this throws).
 *
 * With `make`, a directory directly below the root that the store has not lately seen there (`root.known`), or one
 * below a directory this walk made, is made first and opened after (mkdir answers EEXIST when it is there): such a
 * name is most often missing, and looking a missing name up in the root waits on the root's lock, which every other
 * op's mkdir, rmdir and rename there takes in turn. Made synchronously (the lookups are, see dir-handle.ts), that
 * wait held the event loop: 125 µs a write on average under 16 concurrent writes here. mkdir waits in the thread
 * pool instead. A state directory the store has seen is opened first, as any other: its name is in the dentry
 * cache, found without the lock, where a mkdir would cost a trip through the pool and take the lock to answer
 * EEXIST (the benchmark's `rewrite` row). Every walk (reads and deletes too) notes a state directory it opened and
 * forgets one it found missing, a link or not a directory; a delete that prunes one, and unmakeDirs, forget it too.
 * The set only chooses which of the two ways is tried first: both end in the same answer.
 */
export async function walkDirs(
  root: RootDir,
  names: readonly string[],
  held: DirHandle[],
  make?: MakeDirs,
): Promise<WalkEnd> {
  let dir = openRoot(root);
  held.push(dir);
  let made = false;
  for (const [depth, name] of names.entries()) {
    const found: DirHandle | Placed | Exclude<WalkEnd, 'ok'> =
      make === undefined
        ? await openChildDir(dir, name)
        : await placeChildDir(
            dir,
            name,
            (depth === 0 && !root.known.has(name)) || made,
            mkdirMode(make.ownership, depth),
          );
    if (typeof found === 'string') {
      if (depth === 0) root.known.delete(name);
      return found;
    }
    if (depth === 0) root.known.add(name);
    const child = found instanceof Placed ? found.child : found;
    made = found instanceof Placed && found.made;
    // Held before it is owned: should chown or chmod fail, the caller closes it and unmakeDirs removes it.
    held.push(child);
    if (made && make !== undefined) {
      make.grown.push(dir);
      // Through the held fd: a chown by name would follow a symlink swapped in since mkdir.
      await ownDir(child, depth, make.ownership);
    }
    dir = child;
  }
  return 'ok';
}

/**
 * Undoes what `make` recorded of a walkDirs: removes, deepest first, the directories it made (those below a `grown`
 * one), for an op that stopped before its change. They are empty (the op's temp entries are gone, and its unit lock
 * kept the agent's other ops out); one that is not stays, and so do those above it.
 */
export async function unmakeDirs(
  root: RootDir,
  held: readonly DirHandle[],
  names: readonly string[],
  make: MakeDirs,
): Promise<void> {
  for (let i = held.length - 1; i >= 1 && make.grown.includes(nth(held, i - 1)); i--) {
    try {
      await rmdir(at(nth(held, i - 1), nth(names, i - 1)));
    } catch (error) {
      errnoOrThrow(error);
      return;
    }
    // The state directory itself is gone again: not one the next write should look up first.
    if (i === 1) root.known.delete(nth(names, 0));
  }
}

/** Opens `name` below `dir` as a directory, no-follow; a string says why it could not. */
export async function openChildDir(
  dir: DirHandle,
  name: string,
  retried = false,
): Promise<DirHandle | Exclude<WalkEnd, 'ok'>> {
  try {
    return openDir(at(dir, name), CHILD_DIR_FLAGS);
  } catch (error) {
    const code = errnoOrThrow(error);
    if (code === 'ELOOP') return 'symlink';
    if (code === 'ENOENT') return 'missing';
    if (code !== 'ENOTDIR') throw error;
    // O_DIRECTORY|O_NOFOLLOW answers ENOTDIR, not ELOOP, for a symlink: only lstat tells them apart.
    const kind = kindOf(dir, name);
    if (kind !== 'dir') return kind;
    // Swapped back to a directory since the open: look once more; one that keeps flipping is an error.
    if (retried) throw error;
    return openChildDir(dir, name, true);
  }
}

class Placed {
  constructor(
    readonly child: DirHandle,
    /** made by this call: to be owned, fsynced in its parent, and removed if the op stops before its change */
    readonly made: boolean,
  ) {}
}

/**
 * The mode a directory is made with: its final one where the umask leaves it whole (then ownDir's chmod is not
 * needed; under the unit's UMask=0077 a 0711 state directory still is). A deeper directory that is chowned after
 * gets no group or other bits until then: for that moment it is root's.
 */
function mkdirMode(ownership: RootOwnership, depth: number): number {
  if (depth === 0) return ownership.topDirMode;
  const chowned = ownership.uid !== undefined || ownership.gid !== undefined;
  return chowned ? ownership.dirMode & 0o700 : ownership.dirMode;
}

/**
 * `name` below `dir` as a held directory, made when missing (its mode passed to mkdir; owner and the rest are the
 * caller's). `makeFirst`: mkdir, then open (see walkDirs); otherwise open, then mkdir on ENOENT.
 */
async function placeChildDir(
  dir: DirHandle,
  name: string,
  makeFirst: boolean,
  mode: number,
): Promise<Placed | Exclude<WalkEnd, 'ok'>> {
  if (!makeFirst) {
    const child = await openChildDir(dir, name);
    if (child !== 'missing') return typeof child === 'string' ? child : new Placed(child, false);
  }
  // Twice at most: a directory removed between an EEXIST and the open (by someone else: the unit lock keeps the
  // agent's own ops apart) is made again rather than answered as missing.
  for (let attempt = 1; ; attempt++) {
    let made = true;
    try {
      await mkdir(at(dir, name), mode);
    } catch (error) {
      // There already (or a symlink, a file): the no-follow open below decides.
      if (errnoOrThrow(error) !== 'EEXIST') throw error;
      made = false;
    }
    const child = await openChildDir(dir, name);
    if (typeof child !== 'string') return new Placed(child, made);
    if (child !== 'missing' || made || attempt === 2) return child;
  }
}

/** What `name` below `dir` is now, after an open as a directory failed with ENOTDIR. */
function kindOf(dir: DirHandle, name: string): Exclude<WalkEnd, 'ok'> | 'dir' {
  let stats;
  try {
    stats = lstatSync(at(dir, name));
  } catch (error) {
    if (errnoOrThrow(error) === 'ENOENT') return 'missing';
    throw error;
  }
  if (stats.isSymbolicLink()) return 'symlink';
  return stats.isDirectory() ? 'dir' : 'not_dir';
}

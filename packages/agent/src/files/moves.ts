// The renames of a replace or a delete, relative to a held directory.
import { link, rename, unlink } from 'node:fs/promises';
import type { DirHandle } from './dir-handle.js';
import { at, errnoOrThrow } from './fd-path.js';
import { removeDirTree } from './remove-tree.js';
import { inspect } from './target.js';
import { randomTempName } from './temp-name.js';

export async function renameAt(dir: DirHandle, from: string, to: string): Promise<void> {
  await rename(at(dir, from), at(dir, to));
}

/**
 * Moves `from` to `to` without replacing whatever is at `to` (that fails instead): a state put back, a target moved
 * aside. A file is linked then unlinked, since rename(2) would silently replace a file made in between (a fresh NVRAM
 * a QEMU may already hold); a directory is renamed, which fails over a non-empty one (an empty one holds no state).
 */
export async function moveNoReplace(dir: DirHandle, from: string, to: string, isDir: boolean): Promise<void> {
  if (isDir) {
    await renameAt(dir, from, to);
    return;
  }
  await link(at(dir, from), at(dir, to));
  await unlink(at(dir, from));
}

/**
 * Removes the temp entry `name` (a file or a tree) if it is there; true when it was. A tree is first renamed to
 * a fresh random name and that rename made durable: a crash halfway through removing it leaves a random temp
 * name, never a partial state under a name recovery would rename into place.
 */
export async function discard(dir: DirHandle, name: string): Promise<boolean> {
  const target = inspect(dir, name);
  if (target.kind === 'absent') return false;
  if (target.kind !== 'dir') {
    await unlinkIfThere(dir, name);
    return true;
  }
  const doomed = randomTempName();
  await renameAt(dir, name, doomed);
  await dir.sync();
  await removeTree(dir, doomed);
  return true;
}

/** Removes a tree or a file whose name nobody else uses (a random temp name). */
export async function removeTree(dir: DirHandle, name: string): Promise<void> {
  if (!(await removeDirTree(dir, name))) await unlinkIfThere(dir, name);
}

async function unlinkIfThere(dir: DirHandle, name: string): Promise<void> {
  try {
    await unlink(at(dir, name));
  } catch (error) {
    if (errnoOrThrow(error) !== 'ENOENT') throw error;
  }
}

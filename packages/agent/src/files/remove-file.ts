// delete: a file or a whole directory tree, then the empty parents up to (never including) the root.
import { lstat, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import { at, closeAll, errnoOf, errnoOrThrow, nth } from './fd-path.js';
import { failed, ioFailure, SYMLINK_FAILURE } from './op-failure.js';
import { removeDirTree } from './remove-tree.js';
import type { OpFailure } from './types.js';
import { walkDirs } from './walk.js';

export type RemoveAnswer = { status: 'deleted' | 'absent' } | OpFailure;

// Frozen: shared by every op that returns them.
const DELETED = Object.freeze({ status: 'deleted' } as const);
const ABSENT = Object.freeze({ status: 'absent' } as const);
const CHANGED = failed('io_error', 'ENOTDIR (the target changed during the delete)');

export async function removeFile(root: string, components: readonly string[]): Promise<RemoveAnswer> {
  const held: FileHandle[] = [];
  try {
    const end = await walkDirs(root, components.slice(0, -1), held);
    if (end === 'symlink') return SYMLINK_FAILURE;
    // A missing parent (or a file where a parent should be) means the target is absent. Pruning still
    // runs: it finishes the work of an earlier delete that was interrupted before it pruned.
    const answer = end === 'ok' ? await removeTarget(held, nth(components, components.length - 1)) : ABSENT;
    if (answer.status === 'failed') return answer;
    const deepest = await pruneEmptyDirs(held, components);
    // On journaling file systems one fsync commits the unlink and the rmdirs before it alike.
    if (answer.status === 'deleted') await deepest.sync();
    return answer;
  } catch (error) {
    return ioFailure(error);
  } finally {
    await closeAll(held);
  }
}

async function removeTarget(held: readonly FileHandle[], name: string): Promise<RemoveAnswer> {
  const dir = nth(held, held.length - 1);
  let isDir: boolean;
  try {
    const stats = await lstat(at(dir, name));
    if (stats.isSymbolicLink()) return SYMLINK_FAILURE;
    isDir = stats.isDirectory();
  } catch (error) {
    if (errnoOrThrow(error) === 'ENOENT') return ABSENT;
    throw error;
  }
  if (isDir) return (await removeDirTree(dir, name)) ? DELETED : CHANGED;
  try {
    // unlink never follows: a symlink swapped in since lstat is removed itself, nothing outside.
    await unlink(at(dir, name));
    return DELETED;
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return ABSENT;
    throw error;
  }
}

/**
 * rmdir each held directory from the deepest up, never the root (held[0]); stops at the first that
 * is not empty. Returns the deepest directory still standing. Best effort: a directory left here
 * is pruned by the next delete below it.
 */
async function pruneEmptyDirs(held: readonly FileHandle[], components: readonly string[]): Promise<FileHandle> {
  for (let i = held.length - 1; i >= 1; i--) {
    try {
      await rmdir(at(nth(held, i - 1), nth(components, i - 1)));
    } catch (error) {
      // Already gone (a concurrent delete): keep going up. Anything else (ENOTEMPTY, EBUSY, …): stop.
      if (errnoOrThrow(error) !== 'ENOENT') return nth(held, i);
    }
  }
  return nth(held, 0);
}

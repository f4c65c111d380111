// Removes a directory and everything below it through no-follow directory fds: links are removed, never followed,
// and a tree of any depth or width goes with a bounded number of open directories (tree-walk.ts).
import { rmdir, unlink } from 'node:fs/promises';
import type { DirHandle } from './dir-handle.js';
import { at, errnoOf } from './fd-path.js';
import { FULL_WALK, walkTree } from './tree-walk.js';
import { openChildDir } from './walk.js';

/**
 * Removes the directory `name` below `parent`; false when `name` is no longer a directory
 * (swapped since the caller looked), in which case nothing was removed.
 */
export async function removeDirTree(parent: DirHandle, name: string): Promise<boolean> {
  const dir = await openChildDir(parent, name);
  if (typeof dir === 'string') return false;
  try {
    await walkTree(
      dir,
      {
        // A directory is walked into, and removed once empty (leave); anything else is unlinked now.
        entry: async ({ dir: holder, name: entry, isDir }) => isDir || !(await removeEntry(holder, entry, true)),
        // Walked into but swapped for a link or a file since the listing: removed as it is now.
        notDir: async ({ dir: holder, name: entry }) => {
          await removeEntry(holder, entry, false);
        },
        leave: async (holder, entry) => {
          await rmdirIfThere(holder, entry);
        },
      },
      FULL_WALK,
    );
  } finally {
    await dir.close();
  }
  await rmdir(at(parent, name));
  return true;
}

/**
 * unlink never follows: a link is removed as a link. False when the entry is a directory after all (swapped since
 * the listing, or a file system without d_type) and may be walked into; only once: an entry flipping between link
 * and directory under us is an attack, answered by an error, not a loop.
 */
async function removeEntry(dir: DirHandle, name: string, mayDescend: boolean): Promise<boolean> {
  try {
    await unlink(at(dir, name));
  } catch (error) {
    const code = errnoOf(error);
    // Vanished since the listing: nothing left to remove.
    if (code === 'ENOENT') return true;
    if (code === 'EISDIR' && mayDescend) return false;
    throw error;
  }
  return true;
}

async function rmdirIfThere(dir: DirHandle, name: string): Promise<void> {
  try {
    await rmdir(at(dir, name));
  } catch (error) {
    if (errnoOf(error) !== 'ENOENT') throw error;
  }
}

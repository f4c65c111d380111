// Removes a directory and everything below it through no-follow directory fds: links are removed, never followed.
import { readdir, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import { at, errnoOf, self } from './fd-path.js';
import { openChildDir } from './walk.js';

/**
 * Removes the directory `name` below `parent`; false when `name` is no longer a directory
 * (swapped since the caller looked), in which case nothing was removed.
 */
export async function removeDirTree(parent: FileHandle, name: string): Promise<boolean> {
  const dir = await openChildDir(parent, name);
  if (typeof dir === 'string') return false;
  try {
    await emptyDir(dir);
  } finally {
    await dir.close();
  }
  await rmdir(at(parent, name));
  return true;
}

async function emptyDir(dir: FileHandle): Promise<void> {
  // Listing /proc/self/fd/N lists the held directory itself, whatever its path has become.
  const entries = await readdir(self(dir), { withFileTypes: true });
  for (const entry of entries) {
    if (entry.isDirectory()) await removeEntryTree(dir, entry.name);
    else await removeEntry(dir, entry.name);
  }
}

/** A sub-directory; if it was swapped for a link or a file since the listing, that is removed instead. */
async function removeEntryTree(dir: FileHandle, name: string): Promise<void> {
  if (!(await removeDirTree(dir, name))) await removeEntry(dir, name, false);
}

/** unlink never follows: a link is removed as a link. */
async function removeEntry(dir: FileHandle, name: string, mayDescend = true): Promise<void> {
  try {
    await unlink(at(dir, name));
  } catch (error) {
    const code = errnoOf(error);
    // Vanished since the listing: nothing left to remove.
    if (code === 'ENOENT') return;
    // Swapped for a directory since the listing, or a file system without d_type. Only once: an entry
    // flipping between link and directory under us is an attack, answered by an error, not a loop.
    if (code !== 'EISDIR' || !mayDescend || !(await removeDirTree(dir, name))) throw error;
  }
}

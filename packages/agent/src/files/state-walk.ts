// Walks a directory state through no-follow directory fds: every inode (for busy), and the files of the state.
import { lstat, open, readdir, type FileHandle } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { LOCK_NAME } from '@hostfiles/shared';
import { at, errnoOrThrow, READ_FILE_FLAGS, self } from './fd-path.js';
import { isTempName } from './temp-name.js';
import { openChildDir } from './walk.js';

/** A regular file of a state, as lstat saw it during the walk. */
export interface FoundFile {
  readonly dir: FileHandle;
  readonly name: string;
  /** relative to the walked directory, `/`-separated */
  readonly path: string;
  readonly stats: BigIntStats;
}

export interface StateVisitor {
  /** Every entry below (lock, temp names and links included): a lock on any of them makes the state busy. */
  readonly inode?: (ino: bigint) => void;
  /** Each regular file of the state: not the lock, nothing named or below a temp name. */
  readonly file?: (file: FoundFile) => Promise<void>;
}

/**
 * Not part of a state, wherever they are below it: the swtpm lock (a writeDir can't carry one) and the agent's
 * temp names (a replace deeper down that is under way).
 */
const outsideState = (name: string): boolean => name === LOCK_NAME || isTempName(name);

export async function walkState(dir: FileHandle, visitor: StateVisitor, prefix = '', inState = true): Promise<void> {
  const entries = await readdir(self(dir));
  for (const name of entries) {
    let stats: BigIntStats;
    try {
      stats = await lstat(at(dir, name), { bigint: true });
    } catch (error) {
      // Removed since the listing: nothing left to see.
      if (errnoOrThrow(error) === 'ENOENT') continue;
      throw error;
    }
    visitor.inode?.(stats.ino);
    const path = `${prefix}${name}`;
    const keep = inState && !outsideState(name);
    if (stats.isFile()) {
      if (keep) await visitor.file?.({ dir, name, path, stats });
    } else if (stats.isDirectory()) {
      await walkChild(dir, name, visitor, `${path}/`, keep);
    }
    // Symlinks, FIFOs, sockets and devices are not files of a state; links are never followed.
  }
}

async function walkChild(
  dir: FileHandle,
  name: string,
  visitor: StateVisitor,
  prefix: string,
  inState: boolean,
): Promise<void> {
  const child = await openChildDir(dir, name);
  // Removed or swapped for a link since the listing: nothing of the state below it.
  if (typeof child === 'string') return;
  try {
    await walkState(child, visitor, prefix, inState);
  } finally {
    await child.close();
  }
}

/**
 * Opens a found file no-follow and checks it is still the inode the walk saw; undefined when it was removed or
 * swapped since. The caller closes the handle.
 */
export async function openFound(found: Pick<FoundFile, 'dir' | 'name' | 'stats'>): Promise<FileHandle | undefined> {
  let file: FileHandle;
  try {
    file = await open(at(found.dir, found.name), READ_FILE_FLAGS);
  } catch (error) {
    const code = errnoOrThrow(error);
    // ENOENT: removed; ELOOP/ENXIO: swapped for a link or a socket.
    if (code === 'ENOENT' || code === 'ELOOP' || code === 'ENXIO') return undefined;
    throw error;
  }
  let same = false;
  try {
    const now = await file.stat({ bigint: true });
    same = now.isFile() && now.ino === found.stats.ino;
  } finally {
    if (!same) await file.close();
  }
  return same ? file : undefined;
}

// Walks a directory state through no-follow directory fds: every inode (for busy), and the files of the state.
// Bounded: a tree past its walk's limits is an op failure (io_error), never the agent's.
import { open, type FileHandle } from 'node:fs/promises';
import { lstatSync, type BigIntStats } from 'node:fs';
import { LOCK_NAME } from '@hostfiles/shared';
import type { DirHandle } from './dir-handle.js';
import { at, errnoOrThrow, READ_FILE_FLAGS } from './fd-path.js';
import { isTempName } from './temp-name.js';
import { STATE_WALK, walkTree, type WalkLimits } from './tree-walk.js';

/** A regular file of a state, as lstat saw it during the walk. */
export interface FoundFile {
  readonly dir: DirHandle;
  readonly name: string;
  /** relative to the walked directory, `/`-separated */
  readonly path: string;
  readonly stats: BigIntStats;
}

export interface StateVisitor {
  /** Every entry below (lock, temp names and links included): a lock on any of them makes the state busy. */
  readonly inode?: (ino: bigint) => 'stop' | undefined;
  /** Each regular file of the state: not the lock, nothing named or below a temp name. */
  readonly file?: (file: FoundFile) => Promise<void>;
}

/**
 * Not part of a state, wherever they are below it: the swtpm lock (a writeDir can't carry one) and the agent's
 * temp names (a replace deeper down that is under way).
 */
const outsideState = (name: string): boolean => name === LOCK_NAME || isTempName(name);

/**
 * Every entry below `dir` (held by the caller), within `limits` (an OpIoError past them): inodes to `inode`, the
 * files of the state to `file`. Never more than a few directories open at once, however deep the tree.
 */
export async function walkState(dir: DirHandle, visitor: StateVisitor, limits: WalkLimits = STATE_WALK): Promise<void> {
  await walkTree(
    dir,
    {
      entry: async ({ dir: parent, name, path }) => {
        let stats: BigIntStats;
        try {
          stats = lstatSync(at(parent, name), { bigint: true });
        } catch (error) {
          // Removed since the listing: nothing left to see.
          if (errnoOrThrow(error) === 'ENOENT') return false;
          throw error;
        }
        if (visitor.inode?.(stats.ino) === 'stop') return 'stop';
        if (stats.isFile()) {
          if (inState(path)) await visitor.file?.({ dir: parent, name, path, stats });
          return false;
        }
        // Symlinks, FIFOs, sockets and devices are not files of a state; links are never followed.
        return stats.isDirectory();
      },
    },
    limits,
  );
}

/** Nothing named or below a lock or temp name is part of the state. */
const inState = (path: string): boolean => !path.split('/').some(outsideState);

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

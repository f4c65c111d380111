// read: a regular file, or every file of a directory state, opened no-follow below no-follow directories.
import { open, type FileHandle } from 'node:fs/promises';
import { MAX_ENTRIES, stateDigest, type ReadEntry } from '@hostfiles/shared';
import type { DirHandle } from './dir-handle.js';
import { at, closeAll, errnoOrThrow, nth, READ_FILE_FLAGS } from './fd-path.js';
import { encodeFile } from './encode-file.js';
import { failed, HARD_LINKED_FAILURE, ioFailure, OpIoError, SYMLINK_FAILURE } from './op-failure.js';
import type { RootDir } from './root-dir.js';
import { openFound, walkState } from './state-walk.js';
import { stateBudget } from './stream-file.js';
import { hasOtherLinks, inspect } from './target.js';
import type { ReadState } from './types.js';
import { openChildDir, walkDirs } from './walk.js';

const NOT_FOUND = failed('not_found', 'no such file or directory');
const NOT_A_FILE = failed('not_regular_file', 'the target is not a regular file or a directory');

/** `maxContentChars`: the base64 the answer has room for (see FileStore.read). */
export async function readState(
  root: RootDir,
  components: readonly string[],
  maxContentChars: number,
): Promise<ReadState> {
  const held: DirHandle[] = [];
  try {
    const end = await walkDirs(root, components.slice(0, -1), held);
    if (end === 'symlink') return SYMLINK_FAILURE;
    // A parent that is a file means the target does not exist, as for stat(2).
    if (end !== 'ok') return NOT_FOUND;
    const dir = nth(held, held.length - 1);
    const name = nth(components, components.length - 1);
    const target = inspect(dir, name);
    switch (target.kind) {
      case 'absent':
        return NOT_FOUND;
      case 'symlink':
        return SYMLINK_FAILURE;
      case 'other':
        return NOT_A_FILE;
      case 'file':
        return await readFile(dir, name, maxContentChars);
      case 'dir':
        return await readDir(dir, name, maxContentChars);
    }
  } catch (error) {
    return ioFailure(error);
  } finally {
    await closeAll(held);
  }
}

async function readFile(dir: DirHandle, name: string, maxContentChars: number): Promise<ReadState> {
  let file: FileHandle;
  try {
    file = await open(at(dir, name), READ_FILE_FLAGS);
  } catch (error) {
    const code = errnoOrThrow(error);
    if (code === 'ELOOP') return SYMLINK_FAILURE;
    if (code === 'ENOENT') return NOT_FOUND;
    // A socket cannot be opened at all.
    if (code === 'ENXIO') return NOT_A_FILE;
    throw error;
  }
  try {
    // fstat of what was opened, not lstat of the name: the name may have changed since.
    const stats = await file.stat();
    if (!stats.isFile()) return NOT_A_FILE;
    if (stats.nlink > 1) return HARD_LINKED_FAILURE;
    return { status: 'read', kind: 'file', ...(await encodeFile(file, stats.size, bytesFor(maxContentChars))) };
  } finally {
    await file.close();
  }
}

/** The most bytes whose base64 fits in `chars`. */
const bytesFor = (chars: number): number => (chars === Infinity ? Infinity : Math.floor(chars / 4) * 3);

/**
 * Every regular file below, never the lock nor temp names; a hard-linked file fails the whole read. Stops as soon as
 * the files read so far fill `maxContentChars`, a walk limit is passed (STATE_WALK) or there are too many files.
 */
async function readDir(parent: DirHandle, name: string, maxContentChars: number): Promise<ReadState> {
  const dir = await openChildDir(parent, name);
  if (dir === 'symlink') return SYMLINK_FAILURE;
  if (typeof dir === 'string') return NOT_FOUND;
  const entries: ReadEntry[] = [];
  let chars = 0;
  let linked: string | undefined;
  const count = stateBudget();
  try {
    await walkState(dir, {
      file: async (found) => {
        if (hasOtherLinks(found.stats)) linked ??= found.path;
        if (linked !== undefined) return;
        if (entries.length === MAX_ENTRIES) throw new OpIoError(`E2BIG (more than ${MAX_ENTRIES} files)`);
        count(found.stats.size);
        const file = await openFound(found);
        // Removed since the listing: not part of the state any more.
        if (file === undefined) return;
        try {
          const encoded = await encodeFile(file, Number(found.stats.size), bytesFor(maxContentChars - chars));
          chars += encoded.content.length;
          entries.push({ path: found.path, ...encoded });
        } finally {
          await file.close();
        }
      },
    });
  } finally {
    await dir.close();
  }
  if (linked !== undefined) return failed('not_regular_file', `${linked} has other hard links`);
  // Byte order of the UTF-8 paths, as stateDigest sorts them.
  entries.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  const size = entries.reduce((sum, entry) => sum + entry.size, 0);
  return { status: 'read', kind: 'dir', sha256: stateDigest(entries), size, entries };
}

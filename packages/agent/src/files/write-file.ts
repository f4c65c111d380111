// write: a temp file beside the target, fsynced, renamed over it, the directory fsynced.
import { lstat, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { at, closeAll, errnoOf, errnoOrThrow, nth, TEMP_FILE_FLAGS } from './fd-path.js';
import { failed, ioFailure, SYMLINK_FAILURE } from './op-failure.js';
import { tempNameFor } from './temp-name.js';
import type { FileOwner, OpFailure } from './types.js';
import { chownHandle, walkDirs, type MakeDirs } from './walk.js';

export type WriteAnswer = { status: 'written' } | OpFailure;

const NOT_A_DIRECTORY = failed('not_regular_file', 'a parent path component is not a directory');
const NOT_A_FILE = failed('not_regular_file', 'the target is not a regular file');

const VANISHED = failed('io_error', 'ENOENT (a directory vanished while being made)');
const ATTEMPTS = 2;

export async function writeFile(
  root: string,
  components: readonly string[],
  content: Buffer,
  owner: FileOwner | undefined,
): Promise<WriteAnswer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await writeOnce(root, components, content, owner);
    } catch (error) {
      // ENOENT: a concurrent delete pruned a directory this walk had just opened. Walk again, once.
      if (attempt < ATTEMPTS && errnoOf(error) === 'ENOENT') continue;
      return ioFailure(error);
    }
  }
}

/** Throws file-system errors other than the expected answers; the caller maps them. */
async function writeOnce(
  root: string,
  components: readonly string[],
  content: Buffer,
  owner: FileOwner | undefined,
): Promise<WriteAnswer> {
  const held: FileHandle[] = [];
  try {
    const make: MakeDirs = { owner, grown: [] };
    const end = await walkDirs(root, components.slice(0, -1), held, make);
    if (end === 'symlink') return SYMLINK_FAILURE;
    if (end === 'missing') return VANISHED;
    if (end === 'not_dir') return NOT_A_DIRECTORY;
    const dir = nth(held, held.length - 1);
    const answer = await replaceFile(dir, nth(components, components.length - 1), content, owner);
    if (answer.status === 'written') await syncDirs([dir, ...make.grown]);
    return answer;
  } finally {
    await closeAll(held);
  }
}

async function replaceFile(
  dir: FileHandle,
  name: string,
  content: Buffer,
  owner: FileOwner | undefined,
): Promise<WriteAnswer> {
  const temp = tempNameFor(name);
  try {
    await writeTemp(dir, temp, content, owner);
    const conflict = await targetConflict(dir, name);
    if (conflict !== undefined) {
      await discard(dir, temp);
      return conflict;
    }
    // rename never follows its final component: a symlink swapped in now is replaced, not written through.
    await rename(at(dir, temp), at(dir, name));
    return { status: 'written' };
  } catch (error) {
    await discard(dir, temp);
    // The target became a directory between the check and the rename.
    if (errnoOf(error) === 'EISDIR') return NOT_A_FILE;
    throw error;
  }
}

async function writeTemp(dir: FileHandle, temp: string, content: Buffer, owner: FileOwner | undefined): Promise<void> {
  const file = await open(at(dir, temp), TEMP_FILE_FLAGS, 0o600);
  try {
    let offset = 0;
    while (offset < content.length) {
      const { bytesWritten } = await file.write(content, offset, content.length - offset, offset);
      offset += bytesWritten;
    }
    if (owner !== undefined) await chownHandle(file, owner);
    await file.sync();
  } finally {
    await file.close();
  }
}

/** Why the existing target must not be replaced, if it must not. */
async function targetConflict(dir: FileHandle, name: string): Promise<OpFailure | undefined> {
  try {
    const stats = await lstat(at(dir, name));
    if (stats.isSymbolicLink()) return SYMLINK_FAILURE;
    return stats.isFile() ? undefined : NOT_A_FILE;
  } catch (error) {
    if (errnoOrThrow(error) === 'ENOENT') return undefined;
    throw error;
  }
}

/** Best effort: a temp file that cannot be removed now is removed by `removeTempFiles` at the next start. */
async function discard(dir: FileHandle, temp: string): Promise<void> {
  await unlink(at(dir, temp)).catch((error: unknown) => errnoOrThrow(error));
}

/** The renamed entry, and the entries of directories made on the way, must survive a crash. */
async function syncDirs(dirs: readonly FileHandle[]): Promise<void> {
  // In parallel: a journaling file system commits them together, so new parents cost little more.
  await Promise.all([...new Set(dirs)].map((dir) => dir.sync()));
}

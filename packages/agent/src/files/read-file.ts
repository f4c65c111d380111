// read: the content of a regular file, opened no-follow below no-follow directories.
import { open, type FileHandle } from 'node:fs/promises';
import { at, closeAll, errnoOrThrow, nth, READ_FILE_FLAGS } from './fd-path.js';
import { failed, ioFailure, SYMLINK_FAILURE } from './op-failure.js';
import type { OpFailure } from './types.js';
import { walkDirs } from './walk.js';

export type ReadAnswer = { status: 'read'; content: Buffer } | OpFailure;

const NOT_FOUND = failed('not_found', 'no such file');
const NOT_A_FILE = failed('not_regular_file', 'the target is not a regular file');

export async function readFile(root: string, components: readonly string[]): Promise<ReadAnswer> {
  const held: FileHandle[] = [];
  try {
    const end = await walkDirs(root, components.slice(0, -1), held);
    if (end === 'symlink') return SYMLINK_FAILURE;
    // A parent that is a file means the target does not exist, as for stat(2).
    if (end !== 'ok') return NOT_FOUND;
    return await readRegular(nth(held, held.length - 1), nth(components, components.length - 1));
  } catch (error) {
    return ioFailure(error);
  } finally {
    await closeAll(held);
  }
}

async function readRegular(dir: FileHandle, name: string): Promise<ReadAnswer> {
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
    if (!(await file.stat()).isFile()) return NOT_A_FILE;
    return { status: 'read', content: await file.readFile() };
  } finally {
    await file.close();
  }
}

// Paths relative to a held directory fd, the stand-in for the openat family that Node lacks.
import { constants } from 'node:fs';
import type { DirHandle } from './dir-handle.js';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK } = constants;

/**
 * `/` and a held root through `/proc/self/fd/N`: that magic link must be followed (it is the held directory itself);
 * the components of a root are opened with CHILD_DIR_FLAGS (see root-dir.ts).
 */
export const ROOT_DIR_FLAGS = O_RDONLY | O_DIRECTORY;
/** Every directory below a root: a symlink in its place fails instead of being followed. */
export const CHILD_DIR_FLAGS = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;
// O_NONBLOCK so that opening a FIFO someone left in a root cannot hang a thread-pool thread.
export const READ_FILE_FLAGS = O_RDONLY | O_NOFOLLOW | O_NONBLOCK;
export const TEMP_FILE_FLAGS = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW;

/**
 * `name` inside the directory held by `dir`. The kernel resolves `/proc/self/fd/N` to that very
 * directory whatever its path has become, so only `name` itself is looked up by name.
 */
export const at = (dir: DirHandle, name: string): string => `/proc/self/fd/${dir.fd}/${name}`;

/** The listing path of a held directory. */
export const self = (dir: DirHandle): string => `/proc/self/fd/${dir.fd}`;

/** The errno code of a system error; undefined for anything else (Node's ERR_* codes included). */
export function errnoOf(error: unknown): string | undefined {
  if (!(error instanceof Error) || !('errno' in error) || typeof error.errno !== 'number') return undefined;
  return 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}

/** Rethrows anything that is not a file-system error: those are programmer errors. */
export function errnoOrThrow(error: unknown): string {
  const code = errnoOf(error);
  if (code === undefined) throw error;
  return code;
}

/** Closes every handle, deepest first, even when one close fails. */
export async function closeAll(handles: readonly DirHandle[]): Promise<void> {
  const results = await Promise.allSettled([...handles].reverse().map((h) => h.close()));
  const failed = results.find((r) => r.status === 'rejected');
  // Closing a read-only directory fd fails only for a bad fd, which is a bug here.
  if (failed !== undefined) throw failed.reason;
}

/** `items[index]`, for indexes the caller has just bounded. */
export function nth<T>(items: readonly T[], index: number): T {
  const item = items[index];
  if (item === undefined) throw new RangeError(`index ${index} outside 0..${items.length - 1}`);
  return item;
}

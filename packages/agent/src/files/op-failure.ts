// The `failed` answers of one op.
import type { OpErrorCode } from '@hostfiles/shared';
import { errnoOrThrow } from './fd-path.js';
import type { OpFailure } from './types.js';

// Frozen: answers like SYMLINK_FAILURE are shared by every op that returns them.
export const failed = (code: OpErrorCode, message: string): OpFailure =>
  Object.freeze({ status: 'failed', error: Object.freeze({ code, message }) });

export const SYMLINK_FAILURE = failed('symlink', 'a path component is a symbolic link');

/**
 * Any other file-system error of an op: only the errno code and syscall, never file contents.
 * Non-fs errors are bugs and are rethrown.
 */
export function ioFailure(error: unknown): OpFailure {
  const code = errnoOrThrow(error);
  const syscall =
    error instanceof Error && 'syscall' in error && typeof error.syscall === 'string' ? error.syscall : 'fs';
  return failed('io_error', `${code} (${syscall})`);
}

// The `failed` answers of one op.
import { clipMessage, type OpErrorCode } from '@hostfiles/shared';
import { errnoOf } from './fd-path.js';
import type { OpFailure } from './types.js';

// Frozen: answers like SYMLINK_FAILURE are shared by every op that returns them. Clipped to MAX_MESSAGE_LENGTH (a
// message may hold a path of up to 4,096 characters).
export const failed = (code: OpErrorCode, message: string): OpFailure =>
  Object.freeze({ status: 'failed', error: Object.freeze({ code, message: clipMessage(message) }) });

export const SYMLINK_FAILURE = failed('symlink', 'a path component is a symbolic link');
/** A directory of the path was removed while a write walked or made it (by someone else: the unit lock keeps the
 * agent's own ops apart). */
export const VANISHED_FAILURE = failed('io_error', 'ENOENT (a directory vanished while being made)');
export const BUSY_FAILURE = failed(
  'busy',
  'a lock is held on the target or a file below it, or a swtpm has it open (a running swtpm or QEMU)',
);
export const HARD_LINKED_FAILURE = failed(
  'not_regular_file',
  'the file has other hard links: its content may live outside the roots',
);

/** An error of our own making that an op answers as `io_error` with its message (never file contents). */
export class OpIoError extends Error {
  override readonly name = 'OpIoError';
}

/**
 * The op reached its gate, or the rename that puts its change in place, once its command's deadline had come
 * (OpContext.deadline, checkDeadline): it stopped before any change.
 */
export class OpExpired extends Error {
  override readonly name = 'OpExpired';
}

/**
 * Any other file-system error of an op: only the errno code and syscall, never file contents. An op stopped by its
 * command's deadline answers `expired`. Other errors are bugs and are rethrown.
 */
export function ioFailure(error: unknown): OpFailure {
  if (error instanceof OpIoError) return failed('io_error', error.message);
  if (error instanceof OpExpired) return failed('expired', error.message);
  const code = errnoOf(error);
  if (code === undefined) throw error;
  const syscall =
    error instanceof Error && 'syscall' in error && typeof error.syscall === 'string' ? error.syscall : 'fs';
  return failed('io_error', `${code} (${syscall})`);
}

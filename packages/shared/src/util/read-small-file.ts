// Reading a small file an operator names (a key, a token, a config): what is read is what was checked.
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

/** Larger than any key, token, certificate chain or config: what is larger is none of them, and is never read. */
export const MAX_SMALL_FILE_BYTES = 1024 * 1024;

export type SmallFile =
  | { readonly ok: true; readonly text: string; /** permission bits */ readonly mode: number }
  /** `code`: the errno of the open or read (ENOENT, EACCES, …), `not_file`, or `too_large` (then `size`) */
  | { readonly ok: false; readonly code: string; readonly size?: number };

/**
 * A regular file's text (UTF-8), opened once and checked through that descriptor (no swap in between); never more
 * than `maxBytes` of it is read (one that grows past it meanwhile is `too_large` too). Opened O_NONBLOCK: a FIFO is
 * answered `not_file` at once instead of holding the caller until someone writes to it (the flag changes nothing for
 * a regular file); O_NOCTTY: a terminal device never becomes the process's. Never throws for what the file system
 * answers.
 */
export function readSmallFile(path: string, maxBytes = MAX_SMALL_FILE_BYTES): SmallFile {
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
    const stat = fstatSync(fd);
    if (!stat.isFile()) return { ok: false, code: 'not_file' };
    if (stat.size > maxBytes) return { ok: false, code: 'too_large', size: stat.size };
    const read = readUpTo(fd, stat.size, maxBytes);
    if (typeof read === 'number') return { ok: false, code: 'too_large', size: read };
    return { ok: true, text: read.toString('utf8'), mode: stat.mode & 0o7777 };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === undefined) throw error;
    return { ok: false, code };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The fd's bytes to its end, or how many were read once that is past `maxBytes` (the reading stops there). */
function readUpTo(fd: number, size: number, maxBytes: number): Buffer | number {
  let buffer = Buffer.allocUnsafe(Math.min(size, maxBytes) + 1);
  let length = 0;
  for (;;) {
    if (length === buffer.length) {
      if (length > maxBytes) return length;
      buffer = Buffer.concat([buffer, Buffer.allocUnsafe(Math.min(length, maxBytes + 1 - length))]);
    }
    const read = readSync(fd, buffer, length, buffer.length - length, null);
    if (read === 0) return buffer.subarray(0, length);
    length += read;
  }
}

const MIB = 1024 * 1024;
const sizeText = (bytes: number): string => (bytes % MIB === 0 ? `${bytes / MIB} MiB` : `${bytes} bytes`);

/** A failed read in a few words: its errno code, `not a regular file`, or `over 1 MiB` (the default cap). */
export function smallFileProblem(failed: { readonly code: string }, maxBytes = MAX_SMALL_FILE_BYTES): string {
  if (failed.code === 'not_file') return 'not a regular file';
  if (failed.code === 'too_large') return `over ${sizeText(maxBytes)}`;
  return failed.code;
}

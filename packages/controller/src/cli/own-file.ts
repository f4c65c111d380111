// The files the CLI reads at start that an operator hands it: the controller key, serve's bearer token, its TLS
// certificate and key. One reader, so each is refused alike and with the same exit code.
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { badInput, CliError, isCliError } from './errors.js';

/** Larger than any key, token or certificate chain: what is larger is no such file (and is never read whole). */
export const MAX_OWN_FILE_BYTES = 1024 * 1024;

/** Errors of a path that is there but names nothing this user can open. */
const UNUSABLE = new Set(['EACCES', 'EPERM', 'ELOOP', 'ENOTDIR']);

export interface OwnFile {
  /** what it is, as messages name it: `controller key`, `token file` */
  readonly what: string;
  /** the owner's alone (mode 0600 or stricter) */
  readonly secret: boolean;
  /** what to do when there is none, said after `no <what> at <path>` */
  readonly whenMissing?: string;
}

/**
 * A file's text, read from the descriptor that was checked, so nothing can be swapped in between. Exit 1 when it is
 * not there (it may yet be provisioned); exit 2 when it is there but unusable: not a regular file, not readable by
 * this user, open to group or others when `secret`, or larger than any such file. Opened O_NONBLOCK: a FIFO handed in
 * is refused as not a file instead of holding the command until someone writes to it (on a regular file the flag
 * changes nothing).
 */
export function readOwnFile(path: string, { what, secret, whenMissing }: OwnFile): string {
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw badInput(`the ${what} ${path} is not a file`);
    if (secret && (stat.mode & 0o077) !== 0) {
      const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
      throw badInput(`the ${what} ${path} is open to group or others: chmod 600 it (its mode is ${mode})`);
    }
    if (stat.size > MAX_OWN_FILE_BYTES) {
      throw badInput(`the ${what} ${path} is ${stat.size} bytes: no ${what} is over ${MAX_OWN_FILE_BYTES}`);
    }
    return readFileSync(fd, 'utf8');
  } catch (error) {
    if (isCliError(error)) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    if (code === 'ENOENT')
      throw new CliError(`no ${what} at ${path}${whenMissing === undefined ? '' : `: ${whenMissing}`}`);
    // There, but not a file this user can open: the path handed in is wrong (bad input), not the machine.
    if (UNUSABLE.has(code)) throw badInput(`cannot read the ${what} ${path}: ${code}`);
    throw new CliError(`cannot read the ${what} ${path}: ${code}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

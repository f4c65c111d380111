// The files the CLI reads at start that an operator hands it: the controller key, serve's bearer token, its TLS
// certificate and key. One reader, so each is refused alike and with the same exit code.
import { readSmallFile, smallFileProblem } from '@hostfiles/shared';
import { badInput, CliError } from './errors.js';

/**
 * Errors of a path that is there but names nothing this user can open (ENXIO: a socket, or a FIFO; ENODEV: a device
 * with no driver), or no path at all (ENAMETOOLONG).
 */
const UNUSABLE = new Set(['EACCES', 'EPERM', 'ELOOP', 'ENOTDIR', 'ENXIO', 'ENODEV', 'ENAMETOOLONG']);

export interface OwnFile {
  /** what it is, as messages name it: `controller key`, `token file` */
  readonly what: string;
  /** the owner's alone (mode 0600 or stricter) */
  readonly secret: boolean;
  /** what to do when there is none, said after `no <what> at <path>` */
  readonly whenMissing?: string;
}

/**
 * A file's text, read from the descriptor that was checked (readSmallFile). Exit 1 when it is not there (it may yet
 * be provisioned); exit 2 when it is there but unusable: not a regular file (a FIFO is refused at once, never waited
 * on), not readable by this user, open to group or others when `secret`, or larger than any such file.
 */
export function readOwnFile(path: string, { what, secret, whenMissing }: OwnFile): string {
  const read = readSmallFile(path);
  if (!read.ok) {
    if (read.code === 'ENOENT') {
      throw new CliError(`no ${what} at ${path}${whenMissing === undefined ? '' : `: ${whenMissing}`}`);
    }
    if (read.code === 'not_file') throw badInput(`the ${what} ${path} is not a file`);
    if (read.code === 'too_large') {
      throw badInput(`the ${what} ${path} is ${smallFileProblem(read)}: too large to be one`);
    }
    // There, but not a file this user can open: the path handed in is wrong (bad input), not the machine.
    if (UNUSABLE.has(read.code)) throw badInput(`cannot read the ${what} ${path}: ${read.code}`);
    throw new CliError(`cannot read the ${what} ${path}: ${read.code}`);
  }
  if (secret && (read.mode & 0o077) !== 0) {
    const mode = read.mode.toString(8).padStart(4, '0');
    throw badInput(`the ${what} ${path} is open to group or others: chmod 600 it (its mode is ${mode})`);
  }
  return read.text;
}

// Check 9's path rule, shared so the controller refuses what the agent would.
import { posix } from 'node:path';
import { err, ok, type Result } from '../result.js';

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** The agent's temp files start with this; it removes them at start, so no request may name one. */
export const TEMP_PREFIX = '.hostfiles-tmp-';

/**
 * The lock file a running swtpm holds (`<state dir>/tpm2/.lock`). It is never part of a state: reads, listings and
 * digests skip it, no directory state may carry one, and a delete of the directory removes it with the rest.
 */
export const LOCK_NAME = '.lock';

/**
 * Trees the agent's crash recovery could not decide between (a committed state, the one it replaced, and a third
 * made at the same name while the agent was down) are kept under this prefix, directly below the root: listed as
 * states, never removed by the agent, for an operator to look at. Requests may name them (to delete one).
 */
export const QUARANTINE_PREFIX = '.hostfiles-quarantine.';

/**
 * A path is confined when it is absolute, already normalized (no `.`, `..`, `//`, trailing `/`),
 * free of NUL, and strictly below `root`. Returns the components below the root.
 * `root` must itself be absolute and normalized, and not `/`.
 */
export function confinePath(path: string, root: string): Result<readonly string[], string> {
  if (path.includes('\0')) return err('the path contains NUL');
  // A lone surrogate is written to disk as U+FFFD: two different strings would name one file.
  if (LONE_SURROGATE.test(path)) return err('the path is not well-formed Unicode');
  if (!path.startsWith('/')) return err('the path is not absolute');
  if (posix.normalize(path) !== path || path.endsWith('/')) return err('the path is not normalized');
  if (!path.startsWith(`${root}/`)) return err(`the path is not below the root ${root}`);
  const components = path.slice(root.length + 1).split('/');
  // normalize() keeps a leading `..` of an absolute path out, but never trust one rule for two.
  if (components.some((c) => c === '' || c === '.' || c === '..')) return err('the path is not normalized');
  if (components.some((c) => c.startsWith(TEMP_PREFIX)))
    return err(`names starting ${TEMP_PREFIX} are the agent's temp files`);
  return ok(components);
}

/**
 * The path of an entry of a directory state, relative to the directory: normalized, not empty, no `.` or `..`, no
 * temp names, no lock file, no line break (a state never needs one, and `sha256sum` prints such names escaped, in a
 * way that differs between coreutils versions for `\r`). Returns its components.
 */
export function confineRelative(path: string): Result<readonly string[], string> {
  if (path.includes('\0')) return err('the path contains NUL');
  if (LONE_SURROGATE.test(path)) return err('the path is not well-formed Unicode');
  if (/[\n\r]/.test(path)) return err('the path contains a line break');
  if (path.startsWith('/')) return err('an entry path is relative to its directory');
  const components = path.split('/');
  if (components.some((c) => c === '' || c === '.' || c === '..')) return err('the path is not normalized');
  if (components.some((c) => c.startsWith(TEMP_PREFIX)))
    return err(`names starting ${TEMP_PREFIX} are the agent's temp files`);
  if (components.includes(LOCK_NAME)) return err(`${LOCK_NAME} belongs to a running swtpm, never to a state`);
  return ok(components);
}

/** A configured root: absolute, normalized, not `/`. */
export function isValidRoot(root: string): boolean {
  return (
    root.startsWith('/') &&
    root !== '/' &&
    !root.includes('\0') &&
    posix.normalize(root) === root &&
    !root.endsWith('/')
  );
}

// Everything checked before the agent makes anything: config, users, roots, key file, /proc/locks.
import { readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  err,
  FILE_TYPES,
  ok,
  readSmallFile,
  signingKeyFromPem,
  smallFileProblem,
  type Result,
  type SigningKey,
} from '@hostfiles/shared';
import { checkConfigFile, type AgentConfig } from './config.js';
import { rootDirProblem, type Ownerships } from './files/index.js';
import { resolveOwnerships } from './ownership-config.js';
import { realOverlapProblems } from './path-overlap.js';
import type { LookUp } from './principals.js';

export interface Preflight {
  readonly config: AgentConfig;
  readonly ownership: Ownerships;
  /** The agent's key when its file exists; undefined when it is to be made at first start. */
  readonly signer: SigningKey | undefined;
}

export interface PreflightOptions {
  readonly lookUp?: LookUp;
  /** Where busy is read from: an agent that can't see locks would replace a running swtpm's state. */
  readonly locksPath?: string;
}

/**
 * Every problem found, all together: the config's own, and those on disk of every field that parsed (a check whose
 * field did not parse is skipped, and only that one). Nothing is created or changed.
 */
export function preflight(configPath: string, options: PreflightOptions = {}): Result<Preflight, string[]> {
  const { config, problems: configProblems, fields } = checkConfigFile(configPath);
  const { roots = {}, stateDir, keyFile } = fields;
  const ownership = resolveOwnerships(fields.ownership ?? {}, options.lookUp);
  const key = keyFile === undefined ? ok(undefined) : checkKeyFile({ keyFile, stateDir });
  const problems = [
    ...configProblems,
    ...(ownership.ok ? [] : ownership.error),
    ...FILE_TYPES.flatMap((type) => {
      const root = roots[type];
      return root === undefined ? [] : rootProblem(root, `${type} root`);
    }),
    ...realOverlapProblems({ roots, stateDir, keyFile }),
    ...(stateDir === undefined ? [] : stateDirProblem(stateDir)),
    ...(key.ok ? [] : [key.error]),
    ...locksProblem(options.locksPath ?? '/proc/locks'),
  ];
  if (config === undefined || !ownership.ok || !key.ok || problems.length > 0) return err(problems);
  return ok({ config, ownership: ownership.value, signer: key.value });
}

/**
 * A root is opened once at start and held (a root swapped for a link later leads nowhere): it must be a directory
 * with no symbolic link on its path, since a link there could lead the agent anywhere at its next start.
 */
function rootProblem(path: string, what: string): string[] {
  const problem = rootDirProblem(path);
  return problem === undefined ? [] : [`the ${what} ${path} cannot be used: ${problem}`];
}

function directoryProblem(path: string, what: string): string[] {
  try {
    return statSync(path).isDirectory() ? [] : [`the ${what} ${path} is not a directory`];
  } catch (error) {
    return [`the ${what} ${path} cannot be used: ${(error as NodeJS.ErrnoException).code ?? String(error)}`];
  }
}

/**
 * The state directory holds the replay journal and the lock that keeps a second agent off it: anyone else who may
 * write there could unlink the journal (and have a captured command applied twice) or take the lock. An existing one
 * must be the agent's own and writable by no one else; a missing one is made 0700.
 */
function stateDirProblem(path: string): string[] {
  let stats;
  try {
    stats = statSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? [] : [`the stateDir ${path} cannot be used: ${code ?? String(error)}`];
  }
  if (!stats.isDirectory()) return [`the stateDir ${path} is not a directory`];
  const uid = process.getuid?.();
  if (uid !== undefined && stats.uid !== uid) {
    return [`the stateDir ${path} belongs to uid ${stats.uid}, not to the agent's (${uid}): chown it`];
  }
  if ((stats.mode & 0o022) !== 0) {
    const mode = (stats.mode & 0o7777).toString(8).padStart(4, '0');
    return [`the stateDir ${path} is writable by others than its owner (mode ${mode}): chmod 700 it`];
  }
  return [];
}

export interface KeyPaths {
  readonly keyFile: string;
  /** Undefined when it did not parse: whether it would hold a key file not made yet is then unknown. */
  readonly stateDir?: string | undefined;
}

/** The agent's key when its file exists (undefined when it is made at first start); refused when unusable. */
export function checkKeyFile({ keyFile, stateDir }: KeyPaths): Result<SigningKey | undefined, string> {
  // Read from the fd whose mode is checked (no swap in between); a FIFO is refused, never waited on.
  const read = readSmallFile(keyFile);
  if (!read.ok) {
    if (read.code !== 'ENOENT') return err(`keyFile: ${keyFile} cannot be read: ${smallFileProblem(read)}`);
    // Made at first start, in the state directory (made first) or an existing one.
    const parent = dirname(keyFile);
    if (stateDir === undefined || parent === stateDir || directoryProblem(parent, 'key file directory').length === 0) {
      return ok(undefined);
    }
    return err(`keyFile: the directory ${parent} does not exist`);
  }
  if ((read.mode & 0o077) !== 0) {
    return err(`keyFile: ${keyFile} is readable by others than its owner: chmod 600 it`);
  }
  try {
    return ok(signingKeyFromPem(read.text));
  } catch (error) {
    return err(`keyFile: ${keyFile} is not an Ed25519 private key in PEM: ${(error as Error).message}`);
  }
}

function locksProblem(path: string): string[] {
  try {
    readFileSync(path, 'utf8');
    return [];
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    return [`${path} cannot be read (${code}): the agent needs it to see that a swtpm or QEMU holds a state`];
  }
}

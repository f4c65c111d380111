// Users and groups by name, through NSS like every other program on the host (Node has no getpwnam).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { err, ok, type Result } from '@hostfiles/shared';

export type Database = 'passwd' | 'group';

/** Looks a name up, as `getent DATABASE NAME` would answer: the line, undefined when unknown. */
export type LookUp = (database: Database, name: string) => string | undefined;

/**
 * `getent` (no shell) sees every NSS source (files, systemd, sssd, LDAP): a swtpm or qemu user that only a
 * directory service knows is found. /etc/passwd and /etc/group are read only when getent is not installed.
 */
export const lookUpWithGetent: LookUp = (database, name) => {
  const result = spawnSync('getent', [database, name], { encoding: 'utf8', timeout: 10_000 });
  if (result.error !== undefined) {
    if ((result.error as NodeJS.ErrnoException).code === 'ENOENT') return lookUpInFile(database, name);
    throw result.error;
  }
  // getent: 0 found, 2 not found; anything else is a failure of the lookup itself.
  if (result.status === 2) return undefined;
  if (result.status !== 0)
    throw new Error(`getent ${database} ${name} exited ${String(result.status)}: ${result.stderr}`);
  return result.stdout.split('\n')[0];
};

function lookUpInFile(database: Database, name: string): string | undefined {
  return readFileSync(`/etc/${database}`, 'utf8')
    .split('\n')
    .find((line) => line.split(':')[0] === name);
}

/** A numeric id as is; a name through `lookUp`. The error says what is missing. */
export function resolvePrincipal(
  value: string | number | undefined,
  database: Database,
  lookUp: LookUp = lookUpWithGetent,
): Result<number | undefined, string> {
  if (value === undefined || typeof value === 'number') return ok(value);
  const what = database === 'passwd' ? 'user' : 'group';
  let line: string | undefined;
  try {
    line = lookUp(database, value);
  } catch (error) {
    return err(`cannot look up the ${what} ${value}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const id = line?.split(':')[2];
  if (id === undefined || !/^\d+$/.test(id)) return err(`no ${what} named ${value} on this host`);
  return ok(Number(id));
}

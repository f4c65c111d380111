// Leftovers of interrupted replaces and deletes: removed when nobody holds them, kept when someone might need them.
import { randomBytes } from 'node:crypto';
import { rename } from 'node:fs/promises';
import type { Logger } from '@hostfiles/shared';
import type { DirHandle } from './dir-handle.js';
import { at, errnoOf } from './fd-path.js';
import type { ReadLockedInodes } from './locks.js';
import { discard, moveNoReplace } from './moves.js';
import { inspect, isBusy } from './target.js';
import { TEMP_PREFIX } from './temp-name.js';
import type { StoreEvent } from './types.js';
import { QUARANTINE_PREFIX } from '@hostfiles/shared';

/**
 * Trees recovery can't decide about (the only copy of a state, maybe) or finds busy, moved out of the way of every
 * op. Not a temp name: startup keeps them, a listing shows each as a unit (reconcile reports it as unknown state),
 * and a request may name one, so an operator can read or delete it through hostfiles.
 */
export { QUARANTINE_PREFIX };

const NAME_MAX_BYTES = 255;

/** What settling needs: the held root (quarantines go there), its configured path (for the log), locks, a clock. */
export interface SettleEnv {
  readonly root: DirHandle;
  readonly rootPath: string;
  readonly readLocks: ReadLockedInodes;
  readonly logger: Logger<StoreEvent>;
  readonly now: () => number;
}

export interface Counts {
  completed: number;
  restored: number;
  removed: number;
  quarantined: number;
}

export const noCounts = (): Counts => ({ completed: 0, restored: 0, removed: 0, quarantined: 0 });

/**
 * `.hostfiles-quarantine.<what it was>.<time>.<random>`: `old.vm1` says it was the old state of `vm1`. A name too
 * long for that keeps only the time and the random part.
 */
export function quarantineName(entry: string, now: number): string {
  const was = entry.startsWith(TEMP_PREFIX) ? entry.slice(TEMP_PREFIX.length) : entry;
  const tail = `${now}.${randomBytes(4).toString('hex')}`;
  const full = `${QUARANTINE_PREFIX}${was}.${tail}`;
  return Buffer.byteLength(full) <= NAME_MAX_BYTES ? full : `${QUARANTINE_PREFIX}${tail}`;
}

/**
 * Moves `entry` below `dir` (`where`: the path of `dir` below the root, `''` or ending in `/`) to a fresh quarantine
 * name in the root, or beside it when the root is on another file system, and says so in a warn line.
 */
export async function quarantine(
  env: SettleEnv,
  dir: DirHandle,
  where: string,
  entry: string,
  counts: Counts,
): Promise<void> {
  const name = quarantineName(entry, env.now());
  let into = env.root;
  try {
    await rename(at(dir, entry), at(into, name));
  } catch (error) {
    if (errnoOf(error) !== 'EXDEV') throw error;
    into = dir;
    await rename(at(dir, entry), at(into, name));
  }
  await Promise.all([...new Set([dir, into])].map((d) => d.sync()));
  counts.quarantined += 1;
  const placed = into === env.root ? name : `${where}${name}`;
  env.logger.warn('quarantined', { path: `${env.rootPath}/${placed}`, from: `${env.rootPath}/${where}${entry}` });
}

/**
 * Settles one leftover temp entry: removed, unless a lock is held on it or below it. A busy one goes back to `name`
 * (the target it was taken from) when that is free, else into quarantine: a tree someone holds is never removed.
 * Links and other non-files are removed as they are (nothing of a state is in them).
 */
export async function settleLeftover(
  env: SettleEnv,
  dir: DirHandle,
  where: string,
  entry: string,
  name: string | undefined,
  counts: Counts,
): Promise<void> {
  const found = inspect(dir, entry);
  if (found.kind === 'absent') return;
  if ((found.kind === 'file' || found.kind === 'dir') && (await isBusy(env.readLocks, dir, entry, found))) {
    if (name !== undefined && inspect(dir, name).kind === 'absent') {
      await moveNoReplace(dir, entry, name, found.kind === 'dir');
      await dir.sync();
      counts.restored += 1;
    } else await quarantine(env, dir, where, entry, counts);
    return;
  }
  if (await discard(dir, entry)) counts.removed += 1;
}

// The steps of a writeDir after its commit point: check again, swap the old state out and the new one in, or drop
// the new one so that recovery can never install it.
import type { Expectation } from '@hostfiles/shared';
import type { DirHandle } from './dir-handle.js';
import { errnoOrThrow } from './fd-path.js';
import { discard, moveNoReplace, removeTree } from './moves.js';
import { BUSY_FAILURE, failed, SYMLINK_FAILURE } from './op-failure.js';
import { unmetPreconditions, type BusyCheck } from './preconditions.js';
import { inspect } from './target.js';
import { randomTempName } from './temp-name.js';
import type { WriteAnswer } from './types.js';

const WRITTEN = Object.freeze({ status: 'written' } as const);
export const NOT_A_DIRECTORY = failed('not_directory', 'the target or a parent path component is not a directory');

export interface Swap {
  readonly parent: DirHandle;
  readonly busy: BusyCheck;
  /** the digest of the state being written (computed once, when a precondition needs it) */
  readonly written: () => string;
  readonly name: string;
  readonly newName: string;
  readonly oldName: string;
  /** fsync of `parent` (a test may make it fail) */
  readonly syncDir: (dir: DirHandle) => Promise<void>;
}

/** The target's kind, then `expect` and busy; undefined when the replace may go on. */
export async function check(swap: Swap, expect: Expectation | undefined): Promise<WriteAnswer | undefined> {
  const target = inspect(swap.parent, swap.name);
  if (target.kind === 'symlink') return SYMLINK_FAILURE;
  if (target.kind === 'file' || target.kind === 'other') return NOT_A_DIRECTORY;
  return unmetPreconditions(expect, swap.parent, swap.name, target, swap.busy, swap.written);
}

/**
 * After the commit: check again, move the old state aside, re-check busy on it, move the new one in. Answers written
 * once the new state is at its name; the parent's fsync is the caller's (syncAfterChange).
 */
export async function swapIn(swap: Swap, expect: Expectation | undefined): Promise<WriteAnswer> {
  const { parent, name, newName, oldName } = swap;
  let moved = false;
  try {
    // Checked before the commit too; this look catches what changed during the commit's rename and fsync.
    const unmet = await check(swap, expect);
    if (unmet !== undefined) {
      await retire(swap);
      return unmet;
    }
    const target = inspect(parent, name);
    if (target.kind === 'dir') {
      // The check just before was the last look; the lock it missed (taken in the microseconds between that
      // look and this rename) is caught on the moved tree below: its inodes and their locks move with it.
      await moveNoReplace(parent, name, oldName, true);
      moved = true;
      if (await swap.busy(oldName)) {
        await moveNoReplace(parent, oldName, name, true);
        moved = false;
        await retire(swap);
        return BUSY_FAILURE;
      }
    }
    await moveNoReplace(parent, newName, name, true);
    moved = false;
  } catch (error) {
    // The first error is the answer. A rollback that fails too leaves names recoverName settles before the next
    // op on this target, or the next start does.
    await rollBack(swap, moved).catch((rollbackError: unknown) => errnoOrThrow(rollbackError));
    throw error;
  }
  // The new state is in place whatever happens next: the caller makes it durable (a failure there is logged, the
  // answer stays written), and an old tree left here is removed before the next op on this target, or at start.
  await discard(parent, oldName).catch((cleanup: unknown) => errnoOrThrow(cleanup));
  return WRITTEN;
}

/** A step after the commit failed: put the old state back and drop the new one, so the answer is what the disk shows. */
async function rollBack(swap: Swap, moved: boolean): Promise<void> {
  if (moved) await moveNoReplace(swap.parent, swap.oldName, swap.name, true);
  await retire(swap);
}

/**
 * Drops a committed state that must not go in. The one rename that matters comes first: under a random temp name it
 * is staging again, which recovery removes and never installs. Removing it is best effort after that.
 */
export async function retire(swap: Swap): Promise<void> {
  const { parent, newName } = swap;
  if (inspect(parent, newName).kind === 'absent') return;
  const doomed = randomTempName();
  await moveNoReplace(parent, newName, doomed, true);
  try {
    await swap.syncDir(parent);
    await removeTree(parent, doomed);
  } catch (error) {
    // Whatever stays under the random name is removed at the next start (or quarantined if someone holds it).
    errnoOrThrow(error);
  }
}

// delete: a file or a whole directory tree, then the empty parents up to (never including) the root.
import { rmdir, unlink } from 'node:fs/promises';
import type { Expectation } from '@hostfiles/shared';
import type { DirHandle } from './dir-handle.js';
import { at, closeAll, errnoOf, errnoOrThrow, nth } from './fd-path.js';
import { moveNoReplace, removeTree, renameAt } from './moves.js';
import { checkDeadline, parentPath, passGate, settleChange, settleEnvOf, type OpContext } from './op-context.js';
import { BUSY_FAILURE, ioFailure, OpIoError, SYMLINK_FAILURE } from './op-failure.js';
import { unitBusy, unmetPreconditions, type BusyCheck } from './preconditions.js';
import { recoverName } from './recover.js';
import { noCounts, settleLeftover, type SettleEnv } from './settle.js';
import type { RootDir } from './root-dir.js';
import { inspect } from './target.js';
import { randomTempName, roleName } from './temp-name.js';
import type { RemoveAnswer } from './types.js';
import { walkDirs } from './walk.js';

// Frozen: shared by every op that returns them.
const DELETED = Object.freeze({ status: 'deleted' } as const);
const ABSENT = Object.freeze({ status: 'absent' } as const);

export async function removeFile(
  root: RootDir,
  components: readonly string[],
  expect: Expectation | undefined,
  ctx: OpContext,
): Promise<RemoveAnswer> {
  const held: DirHandle[] = [];
  let handedOff = false;
  try {
    const end = await walkDirs(root, components.slice(0, -1), held);
    if (end === 'symlink') return SYMLINK_FAILURE;
    // A missing parent (or a file where a parent should be) means the target is absent. Pruning still
    // runs: it finishes the work of an earlier delete that was interrupted before it pruned.
    const dir = nth(held, held.length - 1);
    const name = nth(components, components.length - 1);
    const busy = unitBusy(ctx.readLocks, held, components, root.free, root);
    const env = settleEnvOf(ctx, root, nth(held, 0));
    const settle = { env, where: parentPath(components) };
    // Nothing to overlap with the record's fdatasync but the walk: the checks come after it, as the last look.
    await passGate(ctx);
    const answer =
      end === 'ok' ? await removeTarget(dir, name, expect, settle, busy, root.leftovers.possible, ctx) : ABSENT;
    if (answer.status === 'failed') return answer;
    const deepest = await pruneEmptyDirs(held, components);
    // Nothing stands below the root on the target's path any more: its state directory is gone (walk.ts).
    if (deepest === nth(held, 0)) root.known.delete(nth(components, 0));
    // On journaling file systems one fsync commits the removal and the rmdirs before it alike.
    if (answer.status === 'deleted')
      handedOff = await settleChange(ctx, `${root.path}/${components.join('/')}`, [deepest], held);
    return answer;
  } catch (error) {
    return ioFailure(error);
  } finally {
    if (!handedOff) await closeAll(held);
  }
}

/**
 * Moves the target aside (it leaves its path in one rename), checks busy once more on what moved, then removes
 * it. The busy check before the rename is the last look; a lock taken in the microseconds between it and the
 * rename is caught on the moved tree (inodes and their locks move with it), which then goes back.
 */
async function removeTarget(
  dir: DirHandle,
  name: string,
  expect: Expectation | undefined,
  { env, where }: { env: SettleEnv; where: string },
  busy: BusyCheck,
  leftovers: boolean,
  ctx: OpContext,
): Promise<RemoveAnswer> {
  // Leftovers of a replace of this name whose rollback failed while the agent kept running (ReplaceLeftovers).
  if (leftovers) await recoverName(env, dir, where, name);
  const target = inspect(dir, name);
  if (target.kind === 'absent') return ABSENT;
  if (target.kind === 'symlink') return SYMLINK_FAILURE;
  const unmet = await unmetPreconditions(expect, dir, name, target, busy);
  if (unmet !== undefined) return unmet;
  // The last look (a digest, a busy walk) may have taken long: nothing moves once the command's deadline has come.
  checkDeadline(ctx);
  let aside: string;
  try {
    aside = await moveAside(env, dir, where, name, target.kind === 'dir');
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return ABSENT;
    throw error;
  }
  if (await busy(aside)) {
    await moveNoReplace(dir, aside, name, target.kind === 'dir');
    return BUSY_FAILURE;
  }
  if (target.kind === 'dir') await removeTree(dir, aside);
  else await unlinkOrGone(dir, aside);
  return DELETED;
}

/**
 * Moves the target to `del.<name>` (so a listing sees which unit is on its way out; a crash leaves a temp that
 * startup settles) and returns that name. Never over anything of the agent's: a `del.<name>` an earlier delete left
 * is settled (removed, or quarantined if someone holds it) and the move tried again; should one still be in the way,
 * the target goes to a random temp name instead. A file goes there by one rename when lstat finds the name free
 * (renamedAside), not by a link and an unlink: one trip through the thread pool less.
 */
async function moveAside(env: SettleEnv, dir: DirHandle, where: string, name: string, isDir: boolean): Promise<string> {
  const aside = roleName('del', name);
  if (aside !== undefined) {
    if (!isDir && inspect(dir, aside).kind === 'absent' && (await renamedAside(dir, name, aside))) return aside;
    if (await moved(() => moveNoReplace(dir, name, aside, isDir))) return aside;
    await settleLeftover(env, dir, where, aside, name, noCounts());
    if (await moved(() => moveNoReplace(dir, name, aside, isDir))) return aside;
  }
  const random = randomTempName();
  await moveNoReplace(dir, name, random, isDir);
  return random;
}

/**
 * rename(2) of a file to its `del.` name, which lstat has just found free. Only the agent makes `del.` names, but the
 * owner of a state's inner directories (its swtpm's user) could make one in between: a directory there fails the
 * rename (false: the way that never replaces is taken), a file of theirs there is replaced — in their own state,
 * which is being deleted. A directory swapped in for the target since its lstat, moved instead, is put back, and the
 * delete fails as link(2) would have made it fail.
 */
async function renamedAside(dir: DirHandle, name: string, aside: string): Promise<boolean> {
  if (!(await moved(() => renameAt(dir, name, aside)))) return false;
  if (inspect(dir, aside).kind === 'dir') {
    await moveNoReplace(dir, aside, name, true);
    throw new OpIoError('EISDIR (the target became a directory while it was being deleted)');
  }
  return true;
}

/** Runs `move`; false when something is in the way where it goes. */
async function moved(move: () => Promise<void>): Promise<boolean> {
  try {
    await move();
    return true;
  } catch (error) {
    const code = errnoOf(error);
    if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'EISDIR' || code === 'ENOTDIR') return false;
    throw error;
  }
}

/** A file moved aside; swapped for a directory since (by someone else) it is removed as a tree. */
async function unlinkOrGone(dir: DirHandle, name: string): Promise<void> {
  try {
    await unlink(at(dir, name));
  } catch (error) {
    const code = errnoOrThrow(error);
    if (code === 'EISDIR') await removeTree(dir, name);
    else if (code !== 'ENOENT') throw error;
  }
}

/**
 * rmdir each held directory from the deepest up, never the root (held[0]); stops at the first that
 * is not empty. Returns the deepest directory still standing. Best effort: a directory left here
 * is pruned by the next delete below it.
 */
async function pruneEmptyDirs(held: readonly DirHandle[], components: readonly string[]): Promise<DirHandle> {
  for (let i = held.length - 1; i >= 1; i--) {
    try {
      await rmdir(at(nth(held, i - 1), nth(components, i - 1)));
    } catch (error) {
      // Already gone (a concurrent delete): keep going up. Anything else (ENOTEMPTY, EBUSY, …): stop.
      if (errnoOrThrow(error) !== 'ENOENT') return nth(held, i);
    }
  }
  return nth(held, 0);
}

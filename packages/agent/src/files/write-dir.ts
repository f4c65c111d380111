// writeDir: a whole directory state replaced atomically. Staged beside the target, committed by one rename,
// swapped in by two more; recover.ts finishes or undoes a swap a crash cut off.
import type { FileHandle } from 'node:fs/promises';
import { sha256Of, stateDigest, type Expectation } from '@hostfiles/shared';
import { closeAll, errnoOrThrow, nth } from './fd-path.js';
import { discard, moveNoReplace, removeTree, renameAt } from './moves.js';
import { parentPath, settleEnvOf, type OpContext } from './op-context.js';
import { BUSY_FAILURE, failed, ioFailure, SYMLINK_FAILURE } from './op-failure.js';
import { unitBusy, unmetPreconditions, type BusyCheck } from './preconditions.js';
import { recoverName } from './recover.js';
import type { RootDir } from './root-dir.js';
import { stageState } from './stage-dir.js';
import { inspect, type Target } from './target.js';
import { randomTempName, roleName } from './temp-name.js';
import type { StateEntry, WriteAnswer } from './types.js';
import { walkDirs, type MakeDirs } from './walk.js';

const WRITTEN = Object.freeze({ status: 'written' } as const);
const NOT_A_DIRECTORY = failed('not_directory', 'the target or a parent path component is not a directory');
const NAME_TOO_LONG = failed('io_error', 'ENAMETOOLONG (no room for the temp names of a replace)');

interface Swap {
  readonly parent: FileHandle;
  readonly busy: BusyCheck;
  /** the digest of the state being written (computed once, when a precondition needs it) */
  readonly written: () => string;
  readonly name: string;
  readonly newName: string;
  readonly oldName: string;
}

export async function writeDir(
  root: RootDir,
  components: readonly string[],
  entries: readonly StateEntry[],
  expect: Expectation | undefined,
  ctx: OpContext,
): Promise<WriteAnswer> {
  const name = nth(components, components.length - 1);
  const newName = roleName('new', name);
  const oldName = roleName('old', name);
  if (newName === undefined || oldName === undefined) return NAME_TOO_LONG;
  const held: FileHandle[] = [];
  try {
    const make: MakeDirs = { ownership: ctx.ownership, grown: [] };
    const end = await walkDirs(root, components.slice(0, -1), held, make);
    if (end === 'symlink') return SYMLINK_FAILURE;
    if (end !== 'ok') return NOT_A_DIRECTORY;
    const parent = nth(held, held.length - 1);
    const written = once(() =>
      stateDigest(entries.map((e) => ({ path: e.components.join('/'), sha256: sha256Of(e.content) }))),
    );
    const swap = { parent, busy: unitBusy(ctx.readLocks, held, components), written, name, newName, oldName };
    // Leftovers of a rollback that failed while the agent kept running: settled as a restart would.
    await recoverName(settleEnvOf(ctx, root, nth(held, 0)), swap.parent, parentPath(components), name);
    const unmet = await check(swap, expect);
    if (unmet !== undefined) return unmet;
    await stage(swap, entries, ctx, components.length - 1);
    const answer = await swapIn(swap, expect);
    if (answer.status === 'written') await Promise.all([...new Set(make.grown)].map((dir) => dir.sync()));
    return answer;
  } catch (error) {
    return ioFailure(error);
  } finally {
    await closeAll(held);
  }
}

/** The target's kind, then `expect` and busy; undefined when the replace may go on. */
async function check(swap: Swap, expect: Expectation | undefined): Promise<WriteAnswer | undefined> {
  const target = await inspect(swap.parent, swap.name);
  if (target.kind === 'symlink') return SYMLINK_FAILURE;
  if (target.kind === 'file' || target.kind === 'other') return NOT_A_DIRECTORY;
  return unmetPreconditions(expect, swap.parent, swap.name, target, swap.busy, swap.written);
}

function once(compute: () => string): () => string {
  let value: string | undefined;
  return () => (value ??= compute());
}

/** Stages the new state and commits it: renamed to `new.<name>`, the rename made durable. */
async function stage(swap: Swap, entries: readonly StateEntry[], ctx: OpContext, depth: number): Promise<void> {
  const staging = randomTempName();
  try {
    await stageState(swap.parent, staging, entries, ctx.ownership, depth);
  } catch (error) {
    // Best effort: whatever stays is removed at the next start. A bug (not an fs error) still throws.
    await removeTree(swap.parent, staging).catch((cleanup: unknown) => errnoOrThrow(cleanup));
    throw error;
  }
  await renameAt(swap.parent, staging, swap.newName);
  await swap.parent.sync();
}

/** After the commit: check again, move the old state aside, re-check busy on it, move the new one in. */
async function swapIn(swap: Swap, expect: Expectation | undefined): Promise<WriteAnswer> {
  const { parent, name, newName, oldName } = swap;
  let moved = false;
  try {
    const unmet = await check(swap, expect);
    if (unmet !== undefined) {
      await discard(parent, newName);
      return unmet;
    }
    const target: Target = await inspect(parent, name);
    if (target.kind === 'dir') {
      // The check just before was the last look; the lock it missed (taken in the microseconds between that
      // look and this rename) is caught on the moved tree below: its inodes and their locks move with it.
      await renameAt(parent, name, oldName);
      moved = true;
      if (await swap.busy(oldName)) {
        await moveNoReplace(parent, oldName, name, true);
        moved = false;
        await discard(parent, newName);
        return BUSY_FAILURE;
      }
    }
    await renameAt(parent, newName, name);
    moved = false;
    await parent.sync();
  } catch (error) {
    // The first error is the answer. A rollback that fails too leaves names recoverName settles before the next
    // op on this target, or the next start does.
    await rollBack(swap, moved).catch((rollbackError: unknown) => errnoOrThrow(rollbackError));
    throw error;
  }
  // The new state is in place whatever happens to the old one: an old tree left here is removed by recoverName
  // before the next op on this target, or at the next start.
  await discard(parent, oldName).catch((cleanup: unknown) => errnoOrThrow(cleanup));
  return WRITTEN;
}

/** A step after the commit failed: put the old state back and drop the new one, so the answer is what the disk shows. */
async function rollBack(swap: Swap, moved: boolean): Promise<void> {
  if (moved) await moveNoReplace(swap.parent, swap.oldName, swap.name, true);
  await discard(swap.parent, swap.newName);
}

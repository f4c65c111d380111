// writeDir: a whole directory state replaced atomically. Staged beside the target, committed by one rename,
// swapped in by two more (swap-in.ts); recover.ts finishes or undoes a swap a crash cut off.
import { sha256Of, stateDigest, type Expectation } from '@hostfiles/shared';
import type { DirHandle } from './dir-handle.js';
import { errnoOrThrow, nth } from './fd-path.js';
import { moveNoReplace, removeTree } from './moves.js';
import {
  changeMakingParents,
  checkDeadline,
  parentPath,
  passGate,
  settleEnvOf,
  syncDirOf,
  type OpContext,
} from './op-context.js';
import { failed, ioFailure, SYMLINK_FAILURE, VANISHED_FAILURE } from './op-failure.js';
import { unitBusy } from './preconditions.js';
import { recoverName } from './recover.js';
import type { RootDir } from './root-dir.js';
import { stageState } from './stage-dir.js';
import { check, NOT_A_DIRECTORY, retire, swapIn, type Swap } from './swap-in.js';
import { inspect } from './target.js';
import { randomTempName, roleName } from './temp-name.js';
import type { StateEntry, WriteAnswer } from './types.js';
import { walkDirs, type MakeDirs } from './walk.js';

const NAME_TOO_LONG = failed('io_error', 'ENAMETOOLONG (no room for the temp names of a replace)');

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
  try {
    return await changeMakingParents(root, components, ctx, (held, make) =>
      replaceDir(root, components, entries, expect, ctx, { held, make, newName, oldName }),
    );
  } catch (error) {
    return ioFailure(error);
  }
}

/** The walk (making missing parents), leftovers settled, the checks, staging, the commit and the swap. */
async function replaceDir(
  root: RootDir,
  components: readonly string[],
  entries: readonly StateEntry[],
  expect: Expectation | undefined,
  ctx: OpContext,
  { held, make, newName, oldName }: { held: DirHandle[]; make: MakeDirs; newName: string; oldName: string },
): Promise<WriteAnswer> {
  const name = nth(components, components.length - 1);
  const end = await walkDirs(root, components.slice(0, -1), held, make);
  if (end === 'symlink') return SYMLINK_FAILURE;
  if (end === 'missing') return VANISHED_FAILURE;
  if (end !== 'ok') return NOT_A_DIRECTORY;
  const parent = nth(held, held.length - 1);
  const written = once(() =>
    stateDigest(entries.map((e) => ({ path: e.components.join('/'), sha256: sha256Of(e.content) }))),
  );
  const busy = unitBusy(ctx.readLocks, held, components, root.free, root);
  const swap: Swap = { parent, busy, written, name, newName, oldName, syncDir: syncDirOf(ctx) };
  // Leftovers of a rollback that failed while the agent kept running: settled as a restart would, but only once the
  // command is recorded (settling renames states).
  if (root.leftovers.possible) {
    const env = settleEnvOf(ctx, root, nth(held, 0));
    await recoverName(env, swap.parent, parentPath(components), name, undefined, () => passGate(ctx));
  }
  const unmet = await check(swap, expect);
  if (unmet !== undefined) return unmet;
  try {
    const refused = await stageAndCommit(swap, entries, expect, ctx, components.length - 1);
    if (refused !== undefined) return refused;
    return await swapIn(swap, expect);
  } finally {
    if (leftBehind(swap)) root.leftovers.left();
  }
}

/** Whether the replace's `new.` or `old.` name is still there as it ends (true when lstat fails: it may be). */
function leftBehind({ parent, newName, oldName }: Swap): boolean {
  try {
    return inspect(parent, newName).kind !== 'absent' || inspect(parent, oldName).kind !== 'absent';
  } catch {
    return true;
  }
}

function once(compute: () => string): () => string {
  let value: string | undefined;
  return () => (value ??= compute());
}

/**
 * Stages the new state under a random temp name, checks once more (a target that changed or became busy while the
 * state was staged refuses the write before anything is committed), then commits: renamed to `new.<name>`, the
 * rename made durable. Undefined when committed; the refusal otherwise.
 */
async function stageAndCommit(
  swap: Swap,
  entries: readonly StateEntry[],
  expect: Expectation | undefined,
  ctx: OpContext,
  depth: number,
): Promise<WriteAnswer | undefined> {
  const staging = randomTempName();
  let unmet: WriteAnswer | undefined;
  try {
    await stageState(swap.parent, staging, entries, ctx.ownership, depth);
    await ctx.hooks.staged?.();
    await passGate(ctx);
    unmet = await check(swap, expect);
    // The check may have taken long (a digest, a busy walk): nothing is committed once the deadline has come.
    if (unmet === undefined) checkDeadline(ctx);
  } catch (error) {
    await dropStaging(swap.parent, staging);
    throw error;
  }
  if (unmet !== undefined) {
    await dropStaging(swap.parent, staging);
    return unmet;
  }
  // The commit: from here on the new state is installed, by this op or by recovery after a crash.
  await moveNoReplace(swap.parent, staging, swap.newName, true);
  try {
    await swap.syncDir(swap.parent);
  } catch (error) {
    // Not known durable, so not committed: the answer is this failure, and recovery must not install it later.
    await retire(swap).catch((cleanup: unknown) => errnoOrThrow(cleanup));
    throw error;
  }
  await ctx.hooks.committed?.();
  return undefined;
}

/** Best effort: whatever stays is removed at the next start. A bug (not an fs error) still throws. */
async function dropStaging(parent: DirHandle, staging: string): Promise<void> {
  await removeTree(parent, staging).catch((cleanup: unknown) => errnoOrThrow(cleanup));
}

// What every changing op of one root needs besides its path.
import type { Logger } from '@hostfiles/shared';
import type { DirHandle } from './dir-handle.js';
import { closeAll, errnoOrThrow, nth } from './fd-path.js';
import type { ReadLockedInodes } from './locks.js';
import { OpExpired } from './op-failure.js';
import type { RootDir } from './root-dir.js';
import type { SettleEnv } from './settle.js';
import type { Deadline, RootOwnership, StoreEvent, StoreHooks, WriteAnswer } from './types.js';
import { unmakeDirs, type MakeDirs } from './walk.js';

export interface OpContext {
  readonly ownership: RootOwnership;
  readonly readLocks: ReadLockedInodes;
  readonly logger: Logger<StoreEvent>;
  readonly now: () => number;
  readonly hooks: StoreHooks;
  /** The command's journal record, durable once it settles (OpTiming.gate); none outside a command. */
  readonly gate?: Promise<void>;
  /** When the command stops being one any agent may apply (OpTiming.deadline); none outside a command. */
  readonly deadline?: Deadline;
  /** Takes the op's last fsyncs instead of the op waiting for them (OpTiming.onDurable). */
  readonly defer?: (durable: Promise<void>) => void;
}

/**
 * The command an op belongs to could not be recorded (its journal line did not become durable): the op stopped
 * before changing anything. Not a file-system error of the op's own, so ioFailure rethrows it and the whole request
 * fails, as it does when the record fails before any op began.
 */
export class CommandNotRecorded extends Error {
  override readonly name = 'CommandNotRecorded';
}

/**
 * Waits for the command's record to be durable (OpContext.gate): called just before an op's last look and first
 * change, so that what it does before — walks, checks, writing and syncing a temp file or a staged tree — runs
 * alongside the record's fdatasync. Then, at or past the command's deadline (an op that waited behind a long batch),
 * it stops the op before any change (OpExpired): nothing of a command lands after its life and the skew.
 */
export async function passGate(ctx: OpContext): Promise<void> {
  if (ctx.gate !== undefined) {
    try {
      await ctx.gate;
    } catch (error) {
      throw new CommandNotRecorded('the command could not be recorded in the replay journal', { cause: error });
    }
  }
  checkDeadline(ctx);
}

/**
 * Throws OpExpired once the command's deadline has come (check 7 refuses a command from that very millisecond):
 * at the gate, and again just before an op's change that cannot be taken back (a rename into place), in case its
 * last look (a busy walk, a digest) took that long.
 */
export function checkDeadline(ctx: OpContext): void {
  if (ctx.deadline === undefined) return;
  const late = ctx.deadline.now() - ctx.deadline.at;
  if (late >= 0) {
    throw new OpExpired(`the command expired (with the clock skew) ${late} ms before this op could change anything`);
  }
}

/**
 * The fsyncs after the change (syncAfterChange), then the close of the op's held directories — they hold the fds
 * being synced. Awaited here; or, when the op's caller takes them (ctx.defer), handed over, and true is returned:
 * the op must then not close `held` itself.
 */
export async function settleChange(
  ctx: OpContext,
  path: string,
  dirs: readonly DirHandle[],
  held: readonly DirHandle[],
): Promise<boolean> {
  if (ctx.defer === undefined) {
    await syncAfterChange(ctx, path, dirs);
    return false;
  }
  ctx.defer(syncAfterChange(ctx, path, dirs).finally(() => closeAll(held)));
  return true;
}

/**
 * What a write and a writeDir share around their change: `place` walks down to the target's parent, making the
 * missing directories (into `held` and `make`), and changes the target. Written: the parent and every directory that
 * gained one are fsynced, in parallel (a journaling file system commits them together, so new parents cost little
 * more), through settleChange. Refused, failed, or stopped at the gate (CommandNotRecorded): the directories it made
 * go again (its temp file or staged tree is gone already), and a failure is rethrown.
 */
export async function changeMakingParents(
  root: RootDir,
  components: readonly string[],
  ctx: OpContext,
  place: (held: DirHandle[], make: MakeDirs) => Promise<WriteAnswer>,
): Promise<WriteAnswer> {
  const held: DirHandle[] = [];
  const make: MakeDirs = { ownership: ctx.ownership, grown: [] };
  let handedOff = false;
  try {
    const answer = await place(held, make);
    if (answer.status === 'written') {
      const dirs = [nth(held, held.length - 1), ...make.grown];
      handedOff = await settleChange(ctx, `${root.path}/${components.join('/')}`, dirs, held);
    } else await unmakeDirs(root, held, components, make);
    return answer;
  } catch (error) {
    await unmakeDirs(root, held, components, make);
    throw error;
  } finally {
    if (!handedOff) await closeAll(held);
  }
}

/** What settling leftovers of `name` needs, from an op that holds the root (`held[0]`, as walkDirs leaves it). */
export const settleEnvOf = (ctx: OpContext, root: RootDir, heldRoot: DirHandle): SettleEnv => ({
  root: heldRoot,
  rootPath: root.path,
  readLocks: ctx.readLocks,
  logger: ctx.logger,
  now: ctx.now,
});

/** The fsync of a directory through the test seam when one is set. */
export const syncDirOf =
  (ctx: OpContext) =>
  (dir: DirHandle): Promise<void> =>
    ctx.hooks.syncDir?.(dir) ?? dir.sync();

/**
 * The fsyncs after the rename (or removal) that changed the target: the change is on disk for every reader now,
 * so a failing fsync must not make the answer a failure the disk contradicts. It is logged (`fsync_failed`, with
 * the errno); only a crash before the file system writes it back could still undo the change.
 */
export async function syncAfterChange(ctx: OpContext, path: string, dirs: readonly DirHandle[]): Promise<void> {
  const sync = syncDirOf(ctx);
  const results = await Promise.allSettled([...new Set(dirs)].map((dir) => sync(dir)));
  const failed = results.find((r) => r.status === 'rejected');
  // errnoOrThrow: anything but a file-system error is a bug, thrown as ever.
  if (failed !== undefined) ctx.logger.warn('fsync_failed', { path, code: errnoOrThrow(failed.reason) });
}

/** The path below the root of the directory holding the target, as settle.ts logs it: `''` or ending in `/`. */
export const parentPath = (components: readonly string[]): string =>
  components
    .slice(0, -1)
    .map((c) => `${c}/`)
    .join('');

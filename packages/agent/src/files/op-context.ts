// What every changing op of one root needs besides its path.
import type { Logger } from '@hostfiles/shared';
import type { DirHandle } from './dir-handle.js';
import { errnoOrThrow } from './fd-path.js';
import type { ReadLockedInodes } from './locks.js';
import type { RootDir } from './root-dir.js';
import type { SettleEnv } from './settle.js';
import type { RootOwnership, StoreEvent, StoreHooks } from './types.js';

export interface OpContext {
  readonly ownership: RootOwnership;
  readonly readLocks: ReadLockedInodes;
  readonly logger: Logger<StoreEvent>;
  readonly now: () => number;
  readonly hooks: StoreHooks;
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

// What every changing op of one root needs besides its path.
import type { FileHandle } from 'node:fs/promises';
import type { Logger } from '@hostfiles/shared';
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
export const settleEnvOf = (ctx: OpContext, root: RootDir, heldRoot: FileHandle): SettleEnv => ({
  root: heldRoot,
  rootPath: root.path,
  readLocks: ctx.readLocks,
  logger: ctx.logger,
  now: ctx.now,
});

/** The path below the root of the directory holding the target, as settle.ts logs it: `''` or ending in `/`. */
export const parentPath = (components: readonly string[]): string =>
  components
    .slice(0, -1)
    .map((c) => `${c}/`)
    .join('');

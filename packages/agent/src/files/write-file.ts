// write: a temp file beside the target, fsynced, renamed over it, the directory fsynced.
import { rename, unlink } from 'node:fs/promises';
import { sha256Of, type Expectation } from '@hostfiles/shared';
import type { DirHandle } from './dir-handle.js';
import { at, errnoOf, errnoOrThrow, nth } from './fd-path.js';
import { changeMakingParents, checkDeadline, passGate, type OpContext } from './op-context.js';
import { BUSY_FAILURE, failed, ioFailure, SYMLINK_FAILURE, VANISHED_FAILURE } from './op-failure.js';
import { unitBusy, unmetExpectation, type BusyCheck } from './preconditions.js';
import type { RootDir } from './root-dir.js';
import { inspect, type Target } from './target.js';
import { tempNameFor } from './temp-name.js';
import type { OpFailure, WriteAnswer } from './types.js';
import { walkDirs, type MakeDirs } from './walk.js';
import { writeNewFile } from './write-content.js';

const WRITTEN = Object.freeze({ status: 'written' } as const);
const NOT_A_DIRECTORY = failed('not_regular_file', 'a parent path component is not a directory');
const NOT_A_FILE = failed('not_regular_file', 'the target is not a regular file');
const ATTEMPTS = 2;

export async function writeFile(
  root: RootDir,
  components: readonly string[],
  content: Buffer,
  expect: Expectation | undefined,
  ctx: OpContext,
): Promise<WriteAnswer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await writeOnce(root, components, content, expect, ctx);
    } catch (error) {
      // ENOENT: a directory this walk had just opened was removed under it. Walk again, once.
      if (attempt < ATTEMPTS && errnoOf(error) === 'ENOENT') continue;
      return ioFailure(error);
    }
  }
}

/** Throws file-system errors other than the expected answers; the caller maps them. */
const writeOnce = (
  root: RootDir,
  components: readonly string[],
  content: Buffer,
  expect: Expectation | undefined,
  ctx: OpContext,
): Promise<WriteAnswer> =>
  changeMakingParents(root, components, ctx, (held, make) =>
    placeFile(root, components, content, expect, ctx, held, make),
  );

/** The walk (making missing parents), the checks, then the temp file and its rename. */
async function placeFile(
  root: RootDir,
  components: readonly string[],
  content: Buffer,
  expect: Expectation | undefined,
  ctx: OpContext,
  held: DirHandle[],
  make: MakeDirs,
): Promise<WriteAnswer> {
  const end = await walkDirs(root, components.slice(0, -1), held, make);
  if (end === 'symlink') return SYMLINK_FAILURE;
  if (end === 'missing') return VANISHED_FAILURE;
  if (end === 'not_dir') return NOT_A_DIRECTORY;
  const dir = nth(held, held.length - 1);
  const name = nth(components, components.length - 1);
  const target = inspect(dir, name);
  const unmet = conflictOf(target) ?? (await unmetExpectation(expect, dir, name, target, () => sha256Of(content)));
  if (unmet !== undefined) return unmet;
  return replaceFile(dir, name, content, ctx, unitBusy(ctx.readLocks, held, components, root.free, root));
}

async function replaceFile(
  dir: DirHandle,
  name: string,
  content: Buffer,
  ctx: OpContext,
  busy: BusyCheck,
): Promise<WriteAnswer> {
  const temp = tempNameFor(name);
  try {
    await writeNewFile(dir, temp, content, ctx.ownership);
    await passGate(ctx);
    // The last look before the rename. A file can't be moved aside and put back here (the rename replaces it),
    // so a lock taken in the microseconds between this look and the rename is not seen: the window that stays.
    const target = inspect(dir, name);
    const refusal = conflictOf(target) ?? ((await busy()) ? BUSY_FAILURE : undefined);
    if (refusal !== undefined) {
      await discardTemp(dir, temp);
      return refusal;
    }
    checkDeadline(ctx);
    // rename never follows its final component: a symlink swapped in now is replaced, not written through.
    await rename(at(dir, temp), at(dir, name));
    return WRITTEN;
  } catch (error) {
    await discardTemp(dir, temp);
    // The target became a directory between the check and the rename.
    if (errnoOf(error) === 'EISDIR') return NOT_A_FILE;
    throw error;
  }
}

/** Why the existing target must not be replaced by a file, if it must not. */
function conflictOf(target: Target): OpFailure | undefined {
  if (target.kind === 'symlink') return SYMLINK_FAILURE;
  return target.kind === 'dir' || target.kind === 'other' ? NOT_A_FILE : undefined;
}

/** Best effort: a temp file that cannot be removed now is removed by recovery at the next start. */
async function discardTemp(dir: DirHandle, temp: string): Promise<void> {
  try {
    await unlink(at(dir, temp));
  } catch (error) {
    errnoOrThrow(error);
  }
}

// What must hold before an op changes its target: the op's `expect`, and no lock held on the target.
import type { FileHandle } from 'node:fs/promises';
import type { Expectation } from '@hostfiles/shared';
import type { ReadLockedInodes } from './locks.js';
import { BUSY_FAILURE, failed } from './op-failure.js';
import { digestOf, isBusy, type Target } from './target.js';
import type { OpFailure } from './types.js';

export async function unmetExpectation(
  expect: Expectation | undefined,
  dir: FileHandle,
  name: string,
  target: Target,
): Promise<OpFailure | undefined> {
  if (expect === undefined) return undefined;
  if (expect === 'absent') {
    return target.kind === 'absent' ? undefined : failed('exists', 'the target exists and the op expected none');
  }
  if (target.kind === 'absent') return failed('changed', 'the target is absent and the op expected a digest');
  const digest = await digestOf(dir, name, target);
  if (digest === undefined) return failed('changed', 'the target has no digest to compare (see not_regular_file)');
  return digest === expect ? undefined : failed('changed', 'the target is not the state the op expected');
}

/** `expect`, then busy: both read the target as it is now, just before the step that would change it. */
export async function unmetPreconditions(
  readLocks: ReadLockedInodes,
  expect: Expectation | undefined,
  dir: FileHandle,
  name: string,
  target: Target,
): Promise<OpFailure | undefined> {
  const unmet = await unmetExpectation(expect, dir, name, target);
  if (unmet !== undefined) return unmet;
  return (await isBusy(readLocks, dir, name, target)) ? BUSY_FAILURE : undefined;
}

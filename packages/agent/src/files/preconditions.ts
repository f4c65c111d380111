// What must hold before an op changes its target: the op's `expect`, and no lock held on the target's unit.
import type { Expectation } from '@hostfiles/shared';
import type { DirHandle } from './dir-handle.js';
import { nth } from './fd-path.js';
import type { FreeUnits } from './free-units.js';
import { sameLocks, type ReadLockedInodes } from './locks.js';
import { BUSY_FAILURE, failed } from './op-failure.js';
import type { RootDir } from './root-dir.js';
import { swtpmRunsOn } from './swtpm-open.js';
import { digestOf, inspect, isBusy, isHeldDirBusy, type Target } from './target.js';
import type { OpFailure } from './types.js';

/**
 * The op's `expect` against the target as it is now. `absent` is also met by a target that already holds exactly the
 * state being written (`written()`, its digest): a repeat of a write that landed but whose answer was lost is a
 * success, not a conflict.
 */
export async function unmetExpectation(
  expect: Expectation | undefined,
  dir: DirHandle,
  name: string,
  target: Target,
  written?: () => string,
): Promise<OpFailure | undefined> {
  if (expect === undefined) return undefined;
  if (expect === 'absent') {
    if (target.kind === 'absent') return undefined;
    if (written !== undefined && (await digestOf(dir, name, target)) === written()) return undefined;
    return failed('exists', 'the target exists and the op expected none');
  }
  if (target.kind === 'absent') return failed('changed', 'the target is absent and the op expected a digest');
  const digest = await digestOf(dir, name, target);
  if (digest === undefined) return failed('changed', 'the target has no digest to compare (see not_regular_file)');
  return digest === expect ? undefined : failed('changed', 'the target is not the state the op expected');
}

/**
 * Whether the target's unit is busy now; `aside`: the name the target was just moved to in its parent. A check made
 * again (after the move aside) walks the unit only when the locks changed since the last look found it free.
 */
export type BusyCheck = (aside?: string) => Promise<boolean>;

/**
 * Busy looks at the whole unit the target is in (the first component below the root, with everything under it),
 * not only at the target: a swtpm locks just `<uuid>/tpm2/.lock`, and a write to `<uuid>/tpm2/tpm2-00.permall`
 * would change its state under it all the same. `held` is the root and the directories down to the target's
 * parent, as walkDirs leaves them; `free`, the root's units found free under the locks read now (free-units.ts);
 * `root`, for the TPM state root's look at which files running swtpms keep their state in (swtpm-open.ts).
 */
export function unitBusy(
  readLocks: ReadLockedInodes,
  held: readonly DirHandle[],
  components: readonly string[],
  free: FreeUnits,
  root?: Pick<RootDir, 'path' | 'swtpms'>,
): BusyCheck {
  let freeOf: ReadonlySet<string> | undefined;
  const locksBusy = async (aside: string | undefined): Promise<boolean> => {
    // Read first: with no lock held anywhere (no VM running) there is nothing to look at, not even the unit.
    const locked = await readLocks();
    if (locked.size === 0) return false;
    if (freeOf !== undefined && sameLocks(locked, freeOf)) return false;
    const busy = await unitIsBusy(locked, held, components, aside, free);
    if (!busy) freeOf = locked;
    return busy;
  };
  // A file unit of the TPM state root (a file right below it) is also busy while a swtpm runs on it: its file://
  // backend locks nothing (swtpm-open.ts). Looked at last, so that nothing waits between it and the change; the
  // unit is looked up only where the look would be made (no lstat on the ops of state directories).
  const swtpmBusy = async (aside: string | undefined): Promise<boolean> =>
    root?.swtpms !== undefined &&
    components.length === 1 &&
    swtpmRunsOn(root, components, inspect(nth(held, 0), aside ?? nth(components, 0)));
  return async (aside) => (await locksBusy(aside)) || swtpmBusy(aside);
}

/**
 * The unit of a target deeper than it is held already (`held[1]`, the directory the op works in or above): walked
 * through that fd, also after the target moved aside (the moved tree is still in it). A target that is the unit
 * itself is looked up by name below the root.
 */
async function unitIsBusy(
  locked: ReadonlySet<string>,
  held: readonly DirHandle[],
  components: readonly string[],
  aside: string | undefined,
  free: FreeUnits,
): Promise<boolean> {
  if (components.length > 1) return isHeldDirBusy(locked, nth(held, 1), free);
  const root = nth(held, 0);
  // A unit moved aside has left its name: what moved is the unit now.
  const name = aside ?? nth(components, 0);
  return isBusy(() => Promise.resolve(locked), root, name, inspect(root, name), free);
}

/** `expect`, then busy: both read the target as it is now, just before the step that would change it. */
export async function unmetPreconditions(
  expect: Expectation | undefined,
  dir: DirHandle,
  name: string,
  target: Target,
  busy: BusyCheck,
  written?: () => string,
): Promise<OpFailure | undefined> {
  const unmet = await unmetExpectation(expect, dir, name, target, written);
  if (unmet !== undefined) return unmet;
  return (await busy()) ? BUSY_FAILURE : undefined;
}

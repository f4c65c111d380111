// Startup recovery: every interrupted directory replace ends holding exactly its old state or its new one, and no
// tree that may be the only copy of a state, or that someone holds, is ever removed.
import type { DirHandle } from './dir-handle.js';
import { errnoOrThrow } from './fd-path.js';
import { FileStoreError } from './file-store-error.js';
import { moveNoReplace } from './moves.js';
import { ioFailure, OpIoError } from './op-failure.js';
import { openRoot, type RootDir } from './root-dir.js';
import { noCounts, QUARANTINE_PREFIX, quarantine, settleLeftover, type Counts, type SettleEnv } from './settle.js';
import { inspect, isBusy } from './target.js';
import { isTempName, parseRoleName, roleName } from './temp-name.js';
import { listEntries, namesOf, STATE_WALK, type Budget } from './tree-walk.js';
import type { RecoveryReport } from './types.js';
import { openChildDir } from './walk.js';

/** Runs one step of recovery: below the root, each unit's failure is logged and skipped, never fatal to the start. */
type Guard = (path: string, run: () => Promise<void>) => Promise<void>;

/**
 * Recovers every directory below `root` (no links followed), then settles every other temp entry. Each unit (an
 * entry of the root) is recovered on its own: a tree past the walk limits (STATE_WALK: a state is a few levels and
 * files) or an I/O error is logged (`recovery_failed`) and the unit left as it is; recoverName settles its replace
 * before the next op on it anyway.
 */
export async function recoverRoot(root: RootDir, env: Omit<SettleEnv, 'root' | 'rootPath'>): Promise<RecoveryReport> {
  const counts = noCounts();
  const unsettled = { count: 0 };
  try {
    const dir = openRoot(root);
    try {
      const full: SettleEnv = { ...env, root: dir, rootPath: root.path };
      // The root's names are read as a stream, each pass afresh: a root of millions of names (the NvRam root is the
      // QEMU user's) is never held whole, and the agent still starts.
      const names = (): AsyncIterable<string> => namesOf(dir);
      const walk = { env: full, counts, guard: isolated(full, unsettled), depth: 0 };
      // Quarantines are never recovered into: whatever is in them stays as it is, replace leftovers included.
      if (await recoverDir(walk, dir, '', names)) unsettled.count += 1;
    } finally {
      await dir.close();
    }
  } catch (error) {
    const code = errnoOrThrow(error);
    throw new FileStoreError(`cannot recover ${root.path}: ${code}`, { code, cause: error });
  }
  // The root is settled only when nothing was left as it was: a unit whose recovery failed may keep its leftovers,
  // and so may a tree put back or quarantined here (what was below it was not recovered). Otherwise the ops below
  // this root keep looking for them.
  if (unsettled.count === 0 && counts.restored === 0 && counts.quarantined === 0) root.leftovers.settled();
  return counts;
}

const isolated =
  (env: SettleEnv, unsettled: { count: number }): Guard =>
  async (path, run) => {
    try {
      await run();
    } catch (error) {
      unsettled.count += 1;
      env.logger.warn('recovery_failed', { path: `${env.rootPath}/${path}`, message: ioFailure(error).error.message });
    }
  };

const direct: Guard = (_path, run) => run();

interface Walk {
  readonly env: SettleEnv;
  readonly counts: Counts;
  readonly guard: Guard;
  /** levels below the root of the directory being recovered */
  readonly depth: number;
  /** the entries the unit being recovered may still list */
  readonly budget?: Budget;
}

/**
 * A directory's names; `fresh`: read again, after recovery changed the directory (a stream of them is read afresh
 * anyway).
 */
type Names = (fresh: boolean) => AsyncIterable<string> | Iterable<string>;

/** Recovers the replaces below `dir`, then the rest of its entries; whether a quarantine is among them. */
async function recoverDir(walk: Walk, dir: DirHandle, where: string, names: Names): Promise<boolean> {
  const { env, counts, guard } = walk;
  let replaces = false;
  let quarantined = false;
  // The replaces that could not be settled: their other names, and their units, are left as they are (only these
  // are remembered, so what is held stays small).
  const failed = new Set<string>();
  for await (const name of names(false)) {
    if (name.startsWith(QUARANTINE_PREFIX)) quarantined = true;
    const role = parseRoleName(name);
    if (role === undefined || role.role === 'del' || failed.has(role.target)) continue;
    const { target } = role;
    // Settled as its names are met, not gathered first: a root of millions of them is never held. The second of a
    // replace's names finds nothing left to settle (two lstats).
    replaces = true;
    await guard(`${where}${target}`, async () => {
      try {
        await recoverName(env, dir, where, target, counts);
      } catch (error) {
        failed.add(target);
        throw error;
      }
    });
  }
  for await (const name of names(replaces)) {
    const parsed = parseRoleName(name);
    if (failed.has(parsed?.target ?? name)) continue;
    if (isTempName(name)) {
      // A delete cut off (`del.<name>`) completes unless someone holds what it moved aside; the rest is staging.
      const from = parsed?.role === 'del' ? parsed.target : undefined;
      await guard(`${where}${name}`, () => settleLeftover(env, dir, where, name, from, counts));
    } else if (!name.startsWith(QUARANTINE_PREFIX)) {
      // Quarantines are kept as they are for an operator: nothing in them is ours to settle.
      await guard(`${where}${name}`, () => recoverChild(walk, dir, where, name));
    }
  }
  return quarantined;
}

/** Below the root, one budget per unit: a unit's tree is bounded like every other walk of a state. */
async function recoverChild(walk: Walk, dir: DirHandle, where: string, name: string): Promise<void> {
  const child = await openChildDir(dir, name);
  // Not a directory (or a link): nothing below it to recover.
  if (typeof child === 'string') return;
  try {
    if (walk.depth + 1 >= STATE_WALK.maxDepth) throw new OpIoError(`E2BIG (deeper than ${STATE_WALK.maxDepth} levels)`);
    const budget = walk.budget ?? { left: STATE_WALK.maxEntries, max: STATE_WALK.maxEntries };
    const below: Walk = { ...walk, guard: direct, depth: walk.depth + 1, budget };
    const listed = await listNames(child, budget);
    await recoverDir(below, child, `${where}${name}/`, (fresh) => (fresh ? relisted(child, budget) : listed));
  } finally {
    await child.close();
  }
}

/** A state's directory's names, within its walk's budget. */
const listNames = async (dir: DirHandle, budget: Budget): Promise<readonly string[]> =>
  (await listEntries(dir, budget)).map(({ name }) => name);

/** Lists `dir` again, after recovery changed it. */
async function* relisted(dir: DirHandle, budget: Budget): AsyncIterable<string> {
  yield* await listNames(dir, budget);
}

/**
 * Settles the replace of `name` below `dir` (`where`: its path below the root; the commit point is the staging tree
 * renamed to `new.<name>`):
 * - new, no target: the new state goes into place (the old is put back instead only when someone holds it);
 * - new and target, no old: the swap is finished, unless the target is busy (then the new one is dropped);
 * - old, no target, no new: the old state is put back;
 * - new, old and a target: someone made a state at the name after the old one left it (libvirt makes a fresh TPM
 *   for a VM whose state is missing). The old may be the only copy of a state, the new is committed: neither can
 *   win, so both are quarantined;
 * - otherwise the target is whole: what is left is removed, or quarantined if someone holds it (settleLeftover).
 * Each step is one rename, so a crash in here is recovered the same way at the next start. Used at startup, and
 * before each op on `name` to clear what a failed rollback left while the agent kept running; `beforeChange` runs
 * once there is something to settle, before anything is (an op passes its command's gate there).
 */
export async function recoverName(
  env: SettleEnv,
  dir: DirHandle,
  where: string,
  name: string,
  counts: Counts = noCounts(),
  beforeChange?: () => Promise<void>,
): Promise<void> {
  const newName = roleName('new', name);
  const oldName = roleName('old', name);
  if (newName === undefined || oldName === undefined) return;
  const fresh = inspect(dir, newName);
  const old = inspect(dir, oldName);
  // The common case before every op: nothing to settle, and two lstats to know it.
  if (fresh.kind === 'absent' && old.kind === 'absent') return;
  await beforeChange?.();
  const hasNew = fresh.kind === 'dir';
  const target = inspect(dir, name);
  if (hasNew && old.kind === 'dir' && target.kind !== 'absent') {
    await quarantine(env, dir, where, oldName, counts);
    await quarantine(env, dir, where, newName, counts);
    return;
  }
  const before = counts.completed + counts.restored;
  if (hasNew && target.kind === 'absent') {
    if (old.kind === 'dir' && (await isBusy(env.readLocks, dir, oldName, old))) {
      await moveNoReplace(dir, oldName, name, true);
      counts.restored += 1;
    } else {
      await moveNoReplace(dir, newName, name, true);
      counts.completed += 1;
    }
  } else if (hasNew && target.kind === 'dir' && old.kind === 'absent') {
    if (!(await isBusy(env.readLocks, dir, name, target)))
      await finishSwap(env, dir, { name, newName, oldName }, counts);
  } else if (!hasNew && old.kind === 'dir' && target.kind === 'absent') {
    await moveNoReplace(dir, oldName, name, true);
    counts.restored += 1;
  }
  // A rename made the state whole: durable before the leftovers go (and only then: this runs before every op).
  if (counts.completed + counts.restored > before) await dir.sync();
  for (const leftover of [newName, oldName]) await settleLeftover(env, dir, where, leftover, name, counts);
}

async function finishSwap(
  env: SettleEnv,
  dir: DirHandle,
  { name, newName, oldName }: { name: string; newName: string; oldName: string },
  counts: Counts,
): Promise<void> {
  await moveNoReplace(dir, name, oldName, true);
  const old = inspect(dir, oldName);
  // Taken by someone between the check and the rename: it goes back, the new state is dropped.
  if (await isBusy(env.readLocks, dir, oldName, old)) {
    await moveNoReplace(dir, oldName, name, true);
    await dir.sync();
    return;
  }
  await moveNoReplace(dir, newName, name, true);
  counts.completed += 1;
}

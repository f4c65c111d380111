// Startup recovery: every interrupted directory replace ends holding exactly its old state or its new one, and no
// tree that may be the only copy of a state, or that someone holds, is ever removed.
import { readdir, type FileHandle } from 'node:fs/promises';
import { errnoOrThrow, self } from './fd-path.js';
import { FileStoreError } from './file-store-error.js';
import { moveNoReplace } from './moves.js';
import { openRoot, type RootDir } from './root-dir.js';
import { noCounts, QUARANTINE_PREFIX, quarantine, settleLeftover, type Counts, type SettleEnv } from './settle.js';
import { inspect, isBusy } from './target.js';
import { isTempName, parseRoleName, roleName } from './temp-name.js';
import type { RecoveryReport } from './types.js';
import { openChildDir } from './walk.js';

/** Recovers every directory below `root` (no links followed), then settles every other temp entry. */
export async function recoverRoot(root: RootDir, env: Omit<SettleEnv, 'root' | 'rootPath'>): Promise<RecoveryReport> {
  const counts = noCounts();
  try {
    const dir = await openRoot(root);
    try {
      await recoverDir({ ...env, root: dir, rootPath: root.path }, dir, '', counts);
    } finally {
      await dir.close();
    }
  } catch (error) {
    const code = errnoOrThrow(error);
    throw new FileStoreError(`cannot recover ${root.path}: ${code}`, { code, cause: error });
  }
  return counts;
}

async function recoverDir(env: SettleEnv, dir: FileHandle, where: string, counts: Counts): Promise<void> {
  const targets = new Set<string>();
  for (const entry of await readdir(self(dir))) {
    const parsed = parseRoleName(entry);
    if (parsed !== undefined && parsed.role !== 'del') targets.add(parsed.target);
  }
  for (const target of targets) await recoverName(env, dir, where, target, counts);
  for (const entry of await readdir(self(dir))) {
    if (isTempName(entry)) {
      // A delete cut off (`del.<name>`) completes unless someone holds what it moved aside; the rest is staging.
      const parsed = parseRoleName(entry);
      await settleLeftover(env, dir, where, entry, parsed?.role === 'del' ? parsed.target : undefined, counts);
      continue;
    }
    // Kept as they are for an operator: nothing in them is ours to settle.
    if (entry.startsWith(QUARANTINE_PREFIX)) continue;
    const child = await openChildDir(dir, entry);
    // Not a directory (or a link): nothing below it to recover.
    if (typeof child === 'string') continue;
    try {
      await recoverDir(env, child, `${where}${entry}/`, counts);
    } finally {
      await child.close();
    }
  }
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
 * before each op on `name` to clear what a failed rollback left while the agent kept running.
 */
export async function recoverName(
  env: SettleEnv,
  dir: FileHandle,
  where: string,
  name: string,
  counts: Counts = noCounts(),
): Promise<void> {
  const newName = roleName('new', name);
  const oldName = roleName('old', name);
  if (newName === undefined || oldName === undefined) return;
  const fresh = await inspect(dir, newName);
  const old = await inspect(dir, oldName);
  // The common case before every op: nothing to settle, and two lstats to know it.
  if (fresh.kind === 'absent' && old.kind === 'absent') return;
  const hasNew = fresh.kind === 'dir';
  const target = await inspect(dir, name);
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
  dir: FileHandle,
  { name, newName, oldName }: { name: string; newName: string; oldName: string },
  counts: Counts,
): Promise<void> {
  await moveNoReplace(dir, name, oldName, true);
  const old = await inspect(dir, oldName);
  // Taken by someone between the check and the rename: it goes back, the new state is dropped.
  if (await isBusy(env.readLocks, dir, oldName, old)) {
    await moveNoReplace(dir, oldName, name, true);
    await dir.sync();
    return;
  }
  await moveNoReplace(dir, newName, name, true);
  counts.completed += 1;
}

// Startup recovery: every interrupted directory replace ends holding exactly its old state or its new one.
import { readdir, type FileHandle } from 'node:fs/promises';
import { errnoOrThrow, self } from './fd-path.js';
import { FileStoreError } from './file-store-error.js';
import type { ReadLockedInodes } from './locks.js';
import { discard, putBack, renameAt } from './moves.js';
import { openRoot, type RootDir } from './root-dir.js';
import { inspect, isBusy } from './target.js';
import { isTempName, parseRoleName, roleName } from './temp-name.js';
import type { RecoveryReport } from './types.js';
import { openChildDir } from './walk.js';

type Counts = { completed: number; restored: number; removed: number };

/** Recovers every directory below `root` (no links followed), then removes every other temp entry. */
export async function recoverRoot(root: RootDir, readLocks: ReadLockedInodes): Promise<RecoveryReport> {
  const counts: Counts = { completed: 0, restored: 0, removed: 0 };
  try {
    const dir = await openRoot(root);
    try {
      await recoverDir(dir, readLocks, counts);
    } finally {
      await dir.close();
    }
  } catch (error) {
    const code = errnoOrThrow(error);
    throw new FileStoreError(`cannot recover ${root.path}: ${code}`, { code, cause: error });
  }
  return counts;
}

async function recoverDir(dir: FileHandle, readLocks: ReadLockedInodes, counts: Counts): Promise<void> {
  const targets = new Set<string>();
  for (const entry of await readdir(self(dir))) {
    const parsed = parseRoleName(entry);
    if (parsed !== undefined && parsed.role !== 'del') targets.add(parsed.target);
  }
  for (const target of targets) await recoverName(dir, target, readLocks, counts);
  for (const entry of await readdir(self(dir))) {
    if (isTempName(entry)) {
      if (await discard(dir, entry)) counts.removed += 1;
      continue;
    }
    const child = await openChildDir(dir, entry);
    // Not a directory (or a link): nothing below it to recover.
    if (typeof child === 'string') continue;
    try {
      await recoverDir(child, readLocks, counts);
    } finally {
      await child.close();
    }
  }
}

/**
 * Settles the replace of `name` below `dir` (the commit point is the staging tree renamed to `new.<name>`):
 * - new, no target: the new state goes into place (the old is put back instead only when someone holds it);
 * - new and target, no old: the swap is finished, unless the target is busy (then the new one is dropped);
 * - old, no target, no new: the old state is put back;
 * - otherwise the target is already whole: what is left is removed.
 * Each step is one rename, so a crash in here is recovered the same way at the next start. Used at startup, and
 * before each op on `name` to clear what a failed rollback left while the agent kept running.
 */
export async function recoverName(
  dir: FileHandle,
  name: string,
  readLocks: ReadLockedInodes,
  counts: Counts = { completed: 0, restored: 0, removed: 0 },
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
  const before = counts.completed + counts.restored;
  if (hasNew && target.kind === 'absent') {
    if (old.kind === 'dir' && (await isBusy(readLocks, dir, oldName, old))) {
      await putBack(dir, oldName, name, true);
      counts.restored += 1;
    } else {
      await renameAt(dir, newName, name);
      counts.completed += 1;
    }
  } else if (hasNew && target.kind === 'dir' && old.kind === 'absent') {
    if (!(await isBusy(readLocks, dir, name, target))) await finishSwap(dir, name, newName, oldName, readLocks, counts);
  } else if (!hasNew && old.kind === 'dir' && target.kind === 'absent') {
    await putBack(dir, oldName, name, true);
    counts.restored += 1;
  }
  // A rename made the state whole: durable before the leftovers go (and only then: this runs before every op).
  if (counts.completed + counts.restored > before) await dir.sync();
  for (const leftover of [newName, oldName]) if (await discard(dir, leftover)) counts.removed += 1;
}

async function finishSwap(
  dir: FileHandle,
  name: string,
  newName: string,
  oldName: string,
  readLocks: ReadLockedInodes,
  counts: Counts,
): Promise<void> {
  await renameAt(dir, name, oldName);
  const old = await inspect(dir, oldName);
  // Taken by someone between the check and the rename: it goes back, the new state is dropped.
  if (await isBusy(readLocks, dir, oldName, old)) {
    await putBack(dir, oldName, name, true);
    await dir.sync();
    return;
  }
  await renameAt(dir, newName, name);
  counts.completed += 1;
}

// Builds a directory state under a temp name beside its target, complete and durable before it is committed.
import { mkdir } from 'node:fs/promises';
import { openDir, type DirHandle } from './dir-handle.js';
import { at, CHILD_DIR_FLAGS, closeAll, nth } from './fd-path.js';
import { ownDir } from './ownership.js';
import type { RootOwnership, StateEntry } from './types.js';
import { writeNewFile } from './write-content.js';

interface Made {
  readonly handle: DirHandle;
  /** components below the root, for ownDir (0: directly below it) */
  readonly depth: number;
}

/**
 * Makes `staging` below `parent` holding exactly `entries`, each directory with the owner and mode the final tree
 * must have (`depth`: the target's components below the root, minus one), every file and directory fsynced.
 * The caller removes `staging` when this throws.
 */
export async function stageState(
  parent: DirHandle,
  staging: string,
  entries: readonly StateEntry[],
  ownership: RootOwnership,
  depth: number,
): Promise<void> {
  const dirs = new Map<string, Made>();
  try {
    const top: Made = { handle: await makeDir(parent, staging), depth };
    dirs.set('', top);
    for (const entry of entries) {
      const dir = await dirFor(dirs, top, entry.components.slice(0, -1));
      await writeNewFile(dir, nth(entry.components, entry.components.length - 1), entry.content, ownership);
    }
    // Deepest first, so each directory's own entry is in place before its parent is made durable.
    const made = [...dirs.values()].sort((a, b) => b.depth - a.depth);
    for (const { handle, depth: below } of made) {
      // Owned once filled: until then nobody but the agent can put anything in it.
      await ownDir(handle, below, ownership);
      await handle.sync();
    }
  } finally {
    await closeAll([...dirs.values()].map((d) => d.handle));
  }
}

/** The staging directory below which `components` lead, made (with its parents) when missing. */
async function dirFor(dirs: Map<string, Made>, top: Made, components: readonly string[]): Promise<DirHandle> {
  let key = '';
  let dir = top;
  for (const name of components) {
    key = key === '' ? name : `${key}/${name}`;
    let next = dirs.get(key);
    if (next === undefined) {
      next = { handle: await makeDir(dir.handle, name), depth: dir.depth + 1 };
      dirs.set(key, next);
    }
    dir = next;
  }
  return dir.handle;
}

/** A fresh directory (mkdir fails if anything is there) held no-follow; modes are set by ownDir later. */
async function makeDir(parent: DirHandle, name: string): Promise<DirHandle> {
  await mkdir(at(parent, name), 0o700);
  return openDir(at(parent, name), CHILD_DIR_FLAGS);
}

// The baseline's durable file work (baseline-server.ts says what and why), apart from its server so that
// store-cost.ts can run the same work in-process beside the agent's file store.
import { mkdir, open, rename, rmdir, unlink } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { errnoOf } from '../files/fd-path.js';
import { randomHex } from '../files/temp-name.js';

export async function fsyncDir(path: string): Promise<void> {
  const dir = await open(path, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** Makes the missing directories from `root` down to `dir`; returns those that gained one (to be fsynced). */
export async function makeParents(root: string, dir: string): Promise<string[]> {
  const grown: string[] = [];
  let parent = root;
  for (const name of relative(root, dir).split('/')) {
    if (name === '') continue;
    const child = join(parent, name);
    try {
      await mkdir(child, 0o700);
      grown.push(parent);
    } catch (error) {
      if (errnoOf(error) !== 'EEXIST') throw error;
    }
    parent = child;
  }
  return grown;
}

export const tempIn = (dir: string): string => join(dir, `.hostfiles-tmp-${randomHex()}`);

/** A new file (exclusive) at `path` holding `content`, fsynced. */
export async function writeSynced(path: string, content: Buffer): Promise<void> {
  const file = await open(path, 'wx', 0o600);
  try {
    await file.writeFile(content);
    await file.sync();
  } finally {
    await file.close();
  }
}

export async function write(root: string, path: string, content: Buffer): Promise<string> {
  const dir = dirname(path);
  const grown = await makeParents(root, dir);
  const temp = tempIn(dir);
  await writeSynced(temp, content);
  await rename(temp, path);
  await Promise.all([dir, ...grown].map(fsyncDir));
  return 'written';
}

export async function remove(root: string, path: string): Promise<string> {
  const dir = dirname(path);
  const aside = tempIn(dir);
  try {
    await rename(path, aside);
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return 'absent';
    throw error;
  }
  await unlink(aside);
  await fsyncDir(await pruneEmptyDirs(root, dir));
  return 'deleted';
}

/** rmdir from `dir` up to, never including, `root`; returns the deepest directory still standing. */
export async function pruneEmptyDirs(root: string, dir: string): Promise<string> {
  for (let current = dir; current !== root; current = dirname(current)) {
    try {
      await rmdir(current);
    } catch (error) {
      if (errnoOf(error) !== 'ENOENT') return current;
    }
  }
  return root;
}

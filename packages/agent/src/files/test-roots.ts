// Test helper: two fresh roots and an "outside" directory in one temp dir, removed after the test.
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { createFileStore } from './file-store.js';
import type { FileOwner, FileRoots, FileStore } from './types.js';

export interface TestRoots {
  readonly roots: FileRoots;
  /** A directory outside both roots that no op may ever touch. */
  readonly outside: string;
  readonly store: FileStore;
}

export function useTestRoots(t: TestContext, owner?: FileOwner): TestRoots {
  const base = mkdtempSync(join(tmpdir(), 'hostfiles-files-'));
  t.after(() => {
    rmSync(base, { recursive: true, force: true });
  });
  const roots = { TpmState: join(base, 'tpm'), NvRam: join(base, 'nvram') };
  const outside = join(base, 'outside');
  for (const dir of [roots.TpmState, roots.NvRam, outside]) mkdirSync(dir);
  const store = createFileStore(owner === undefined ? { roots } : { roots, owner });
  return { roots, outside, store };
}

/** Every path below `dir`, relative, sorted; links listed, never followed (unlike Node 20's recursive readdir). */
export function treeOf(dir: string, prefix = ''): string[] {
  const paths: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = `${prefix}${entry.name}`;
    paths.push(path);
    if (entry.isDirectory()) paths.push(...treeOf(join(dir, entry.name), `${path}/`));
  }
  return paths.sort();
}

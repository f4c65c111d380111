// Test helper: two fresh roots and an "outside" directory in one temp dir, removed after the test.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { TestContext } from 'node:test';
import { createFileStore, type FileStoreOptions } from './file-store.js';
import type { DirHandle } from './dir-handle.js';
import type { FileRoots, FileStore, StoreHooks } from './types.js';

export interface TestRoots {
  readonly roots: FileRoots;
  /** A directory outside both roots that no op may ever touch. */
  readonly outside: string;
  readonly store: FileStore;
}

export function useTestRoots(t: TestContext, options: Omit<FileStoreOptions, 'roots'> = {}): TestRoots {
  const base = mkdtempSync(join(tmpdir(), 'hostfiles-files-'));
  t.after(() => {
    rmSync(base, { recursive: true, force: true });
  });
  const roots = { TpmState: join(base, 'tpm'), NvRam: join(base, 'nvram') };
  const outside = join(base, 'outside');
  for (const dir of [roots.TpmState, roots.NvRam, outside]) mkdirSync(dir);
  const store = createFileStore({ ...options, roots });
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

/** Whether util-linux flock(1) is here; tests that need it skip, saying so, when it is not. */
export const flockAvailable = (): boolean => spawnSync('flock', ['--version']).error === undefined;

/**
 * Holds a real flock(2) on `path` through flock(1) until released (or the test ends); resolves once the lock is
 * held: flock runs the command, which prints, only after it has the lock.
 */
export async function holdFlock(t: TestContext, path: string): Promise<{ release: () => Promise<void> }> {
  const child = spawn('flock', ['--exclusive', path, 'sh', '-c', 'echo locked; exec cat'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  const lines = createInterface({ input: child.stdout });
  const [line] = (await once(lines, 'line')) as [string];
  if (line !== 'locked') throw new Error(`flock said ${line}`);
  const release = async (): Promise<void> => {
    if (child.exitCode !== null) return;
    child.stdin.end();
    await exited;
  };
  t.after(release);
  return { release };
}

/** The first `count` directory fsyncs (StoreHooks.syncDir) held until the test lets them go; later ones run at once. */
export interface HeldDirSyncs {
  readonly hooks: StoreHooks;
  /** settles once `count` fsyncs are held */
  readonly held: Promise<void>;
  /** lets the held fsyncs run */
  release(): void;
}

export function heldDirSyncs(count: number): HeldDirSyncs {
  const waiting: (() => void)[] = [];
  let taken = 0;
  let reached = (): void => undefined;
  const held = new Promise<void>((resolve) => {
    reached = resolve;
  });
  return {
    hooks: {
      syncDir: async (dir: DirHandle) => {
        if (taken < count) {
          taken += 1;
          await new Promise<void>((resolve) => {
            waiting.push(resolve);
            if (taken === count) reached();
          });
        }
        await dir.sync();
      },
    },
    held,
    release: () => {
      for (const go of waiting.splice(0)) go();
    },
  };
}

/** The bytes this process has read so far, by any read(2) (rchar in /proc/self/io, page cache hits included). */
export function bytesReadByThisProcess(): number {
  const line = readFileSync('/proc/self/io', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('rchar:'));
  return Number(line?.slice('rchar:'.length).trim());
}

// The roots: opened once, from `/` one component at a time without following a link, and held for the agent's life.
import { closeSync, lstatSync, openSync } from 'node:fs';
import { borrowDir, type DirHandle } from './dir-handle.js';
import { CHILD_DIR_FLAGS, errnoOrThrow, ROOT_DIR_FLAGS } from './fd-path.js';
import { FileStoreError } from './file-store-error.js';
import { FreeUnits } from './free-units.js';
import { KnownUnits } from './known-units.js';
import type { LookAtSwtpms } from './swtpm-open.js';

/**
 * A root as configured (`path`, what answers show) and the directory it named when the store was made (`fd`). The
 * parent of a root may belong to someone else (`/var/lib/libvirt/qemu` is the qemu user's on RHEL), who can move the
 * root away and put a link to anywhere in its place: every op starts from `fd`, never from `path`.
 */
export interface RootDir {
  readonly path: string;
  readonly fd: number;
  /** the state directories lately seen directly below it (walk.ts) */
  readonly known: KnownUnits;
  /** the state directories below it found free of the locks held now (preconditions.ts) */
  readonly free: FreeUnits;
  /** whether a replace's `new.` or `old.` names may be below it */
  readonly leftovers: ReplaceLeftovers;
  /** For the TPM state root: the files running swtpms keep their state in (swtpm-open.ts), which no lock shows. */
  readonly swtpms?: LookAtSwtpms;
}

/**
 * Whether a directory replace may have left its `new.` or `old.` names below a root, for the next op on its target to
 * settle first (recoverName), as a restart would: from the start until startup recovery has settled the whole root,
 * and for good once a replace ends with one of them still there (a rollback or a cleanup that failed). While none
 * can be there, an op looks for none: two lstats fewer for every delete. Only a replace makes these names, under its
 * unit's lock, and looks on its way out whether it left one.
 */
export class ReplaceLeftovers {
  #possible = true;

  get possible(): boolean {
    return this.#possible;
  }

  /** Startup recovery went through the whole root and settled every one it found. */
  settled(): void {
    this.#possible = false;
  }

  /** A replace left one (or could not tell). */
  left(): void {
    this.#possible = true;
  }
}

/**
 * Opens `path` (absolute, normalized) from `/`, each component no-follow as a directory: a symbolic link anywhere
 * on it is refused, not followed. Throws a FileStoreError saying which component is wrong. The fd is never closed:
 * the store holds it for the life of the process.
 */
export function openRootDir(path: string): RootDir {
  let fd = openSync('/', ROOT_DIR_FLAGS);
  let reached = '';
  try {
    for (const name of path.split('/').filter((c) => c !== '')) {
      reached = `${reached}/${name}`;
      const next = openComponent(fd, reached, name);
      closeSync(fd);
      fd = next;
    }
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  return { path, fd, known: new KnownUnits(), free: new FreeUnits(), leftovers: new ReplaceLeftovers() };
}

function openComponent(parent: number, reached: string, name: string): number {
  try {
    return openSync(`/proc/self/fd/${parent}/${name}`, CHILD_DIR_FLAGS);
  } catch (error) {
    const code = errnoOrThrow(error);
    throw new FileStoreError(whyNot(reached, code), { code, cause: error });
  }
}

/** O_DIRECTORY|O_NOFOLLOW answers ENOTDIR (or ELOOP) for a link: lstat tells a link from a file. */
function whyNot(reached: string, code: string): string {
  if (code !== 'ENOTDIR' && code !== 'ELOOP') return code;
  let isLink = code === 'ELOOP';
  try {
    isLink = lstatSync(reached).isSymbolicLink();
  } catch (error) {
    errnoOrThrow(error);
  }
  return isLink
    ? `${reached} is a symbolic link (configure the directory it leads to)`
    : `${reached} is not a directory`;
}

/** Why `path` can't be a root, for preflight: nothing is kept open. */
export function rootDirProblem(path: string): string | undefined {
  try {
    closeSync(openRootDir(path).fd);
    return undefined;
  } catch (error) {
    if (error instanceof FileStoreError) return error.message;
    throw error;
  }
}

/**
 * The held root as a handle, closed by the caller like any other: its close leaves the held fd open. Paths below it
 * go through `/proc/self/fd/N`, which resolves to the directory `N` holds, wherever it is now and whatever its
 * configured path names now.
 */
export const openRoot = (root: RootDir): DirHandle => borrowDir(root.fd);

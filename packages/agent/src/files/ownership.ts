// Owner and mode of what the store makes, per root (see RootOwnership).
import { fstatSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { DirHandle } from './dir-handle.js';
import type { RootOwnership } from './types.js';

export const DEFAULT_FILE_MODE = 0o600;
export const DEFAULT_DIR_MODE = 0o700;

/** The agent's own owner and 0700/0600: what tests and a store without configured ownership get. */
export const AGENT_OWNERSHIP: RootOwnership = Object.freeze({
  fileMode: DEFAULT_FILE_MODE,
  dirMode: DEFAULT_DIR_MODE,
  topDirMode: DEFAULT_DIR_MODE,
});

/** A written file: uid:gid and fileMode. Through the handle: a chown by name would follow a swapped-in link. */
export async function ownFile(file: FileHandle, ownership: RootOwnership): Promise<void> {
  await chownHandle(file, ownership);
  await setMode(file, ownership.fileMode);
}

/**
 * A directory the store made, `depth` components below the root (0: directly below it). Explicit chmod: mkdir's
 * mode passes through the umask (systemd's UMask=0077 would turn 0711 into 0700).
 */
export async function ownDir(dir: DirHandle, depth: number, ownership: RootOwnership): Promise<void> {
  if (depth === 0) {
    await setMode(dir, ownership.topDirMode);
    return;
  }
  await chownHandle(dir, ownership);
  await setMode(dir, ownership.dirMode);
}

async function chownHandle(handle: DirHandle | FileHandle, ownership: RootOwnership): Promise<void> {
  if (ownership.uid === undefined && ownership.gid === undefined) return;
  await handle.chown(ownership.uid ?? -1, ownership.gid ?? -1);
}

/**
 * chmod, unless the mode is `mode` already — as a fresh file or directory often is, made with that mode under a
 * umask that left it whole: that chmod would change nothing, and a trip through the thread pool costs several times
 * the fstat (made after any chown, which may clear the set-id bits).
 */
async function setMode(handle: DirHandle | FileHandle, mode: number): Promise<void> {
  if ((fstatSync(handle.fd).mode & 0o7777) === (mode & 0o7777)) return;
  await handle.chmod(mode);
}

// Owner and mode of what the store makes, per root (see RootOwnership).
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
  await file.chmod(ownership.fileMode);
}

/**
 * A directory the store made, `depth` components below the root (0: directly below it). Explicit chmod: mkdir's
 * mode passes through the umask (systemd's UMask=0077 would turn 0711 into 0700).
 */
export async function ownDir(dir: DirHandle, depth: number, ownership: RootOwnership): Promise<void> {
  if (depth === 0) {
    await dir.chmod(ownership.topDirMode);
    return;
  }
  await chownHandle(dir, ownership);
  await dir.chmod(ownership.dirMode);
}

async function chownHandle(handle: DirHandle, ownership: RootOwnership): Promise<void> {
  if (ownership.uid === undefined && ownership.gid === undefined) return;
  await handle.chown(ownership.uid ?? -1, ownership.gid ?? -1);
}

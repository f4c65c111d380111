// Visits every regular file below a root through no-follow directory fds; links are skipped, never followed.
import { open, readdir, type FileHandle } from 'node:fs/promises';
import { errnoOrThrow, ROOT_DIR_FLAGS, self } from './fd-path.js';
import { FileStoreError } from './file-store-error.js';
import { openChildDir } from './walk.js';

/** Called with the held directory, the entry's name and its absolute path (root + components). */
export type VisitFile = (dir: FileHandle, name: string, path: string) => Promise<void>;

/** Throws a `FileStoreError` when the scan cannot go on (root unreadable, EIO, …). */
export async function scanTree(root: string, visit: VisitFile): Promise<void> {
  try {
    const dir = await open(root, ROOT_DIR_FLAGS);
    try {
      await scanDir(dir, root, visit);
    } finally {
      await dir.close();
    }
  } catch (error) {
    const code = errnoOrThrow(error);
    throw new FileStoreError(`cannot scan ${root}: ${code}`, { code, cause: error });
  }
}

async function scanDir(dir: FileHandle, path: string, visit: VisitFile): Promise<void> {
  const entries = await readdir(self(dir), { withFileTypes: true });
  for (const entry of entries) {
    const entryPath = `${path}/${entry.name}`;
    if (entry.isFile()) await visit(dir, entry.name, entryPath);
    else if (entry.isDirectory()) await scanChildDir(dir, entry.name, entryPath, visit);
    // Symlinks, FIFOs, sockets and devices are not files of ours.
  }
}

async function scanChildDir(dir: FileHandle, name: string, path: string, visit: VisitFile): Promise<void> {
  const child = await openChildDir(dir, name);
  // Removed or swapped for a link since the listing: nothing of ours below it.
  if (typeof child === 'string') return;
  try {
    await scanDir(child, path, visit);
  } finally {
    await child.close();
  }
}

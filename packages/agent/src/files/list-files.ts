// list and startup cleanup: whole-root scans.
import { createHash } from 'node:crypto';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import type { FileType, ListEntry } from '@hostfiles/shared';
import { at, errnoOrThrow, READ_FILE_FLAGS } from './fd-path.js';
import { scanTree } from './scan-tree.js';
import { isTempName } from './temp-name.js';

export async function listFiles(type: FileType, root: string): Promise<ListEntry[]> {
  const entries: ListEntry[] = [];
  await scanTree(root, async (dir, name, path) => {
    if (isTempName(name)) return;
    const entry = await describeFile(dir, name);
    if (entry !== undefined) entries.push({ type, path, ...entry });
  });
  return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

type FileFacts = Pick<ListEntry, 'size' | 'sha256' | 'mtime'>;

/** Size and hash of the same bytes; undefined when the entry vanished or is no longer a regular file. */
async function describeFile(dir: FileHandle, name: string): Promise<FileFacts | undefined> {
  let file: FileHandle;
  try {
    file = await open(at(dir, name), READ_FILE_FLAGS);
  } catch (error) {
    const code = errnoOrThrow(error);
    // ENOENT: deleted since the listing; ELOOP/ENXIO: swapped for a link or a socket.
    if (code === 'ENOENT' || code === 'ELOOP' || code === 'ENXIO') return undefined;
    throw error;
  }
  try {
    const stats = await file.stat();
    if (!stats.isFile()) return undefined;
    const content = await file.readFile();
    const sha256 = createHash('sha256').update(content).digest('hex');
    return { size: content.length, sha256, mtime: Math.floor(stats.mtimeMs) };
  } finally {
    await file.close();
  }
}

/** Deletes the temp files interrupted writes left under `root`; returns how many. */
export async function removeTempFilesUnder(root: string): Promise<number> {
  let removed = 0;
  await scanTree(root, async (dir, name) => {
    if (!isTempName(name)) return;
    try {
      await unlink(at(dir, name));
      removed += 1;
    } catch (error) {
      // Removed by someone else since the listing: not ours to count.
      if (errnoOrThrow(error) !== 'ENOENT') throw error;
    }
  });
  return removed;
}

// The agent's file store: every op confined to one of two roots, no symlink ever followed below a root.
import { FILE_TYPES, isValidRoot, type FileType } from '@hostfiles/shared';
import { listFiles, removeTempFilesUnder } from './list-files.js';
import { readFile } from './read-file.js';
import { removeFile } from './remove-file.js';
import type { FileOwner, FileRoots, FileStore } from './types.js';
import { writeFile } from './write-file.js';

export function createFileStore(options: { roots: FileRoots; owner?: FileOwner }): FileStore {
  const { roots, owner } = options;
  for (const root of [roots.TpmState, roots.NvRam]) {
    if (!isValidRoot(root)) throw new RangeError(`invalid root: ${JSON.stringify(root)}`);
  }
  const rootOf = (type: FileType): string => {
    if (!(FILE_TYPES as readonly string[]).includes(type))
      throw new RangeError(`unknown file type: ${JSON.stringify(type)}`);
    return roots[type];
  };
  // `async`: a programmer error rejects like every other outcome of these methods, never throws synchronously.
  return {
    write: async (type, components, content) => await writeFile(rootOf(type), checked(components), content, owner),
    remove: async (type, components) => await removeFile(rootOf(type), checked(components)),
    read: async (type, components) => await readFile(rootOf(type), checked(components)),
    list: async (type) => await listFiles(type, rootOf(type)),
    removeTempFiles: async () =>
      (await removeTempFilesUnder(roots.TpmState)) + (await removeTempFilesUnder(roots.NvRam)),
  };
}

/** The caller confined the path already; a component that could escape here is a bug, not a request. */
function checked(components: readonly string[]): readonly string[] {
  if (components.length === 0) throw new RangeError('no path components');
  for (const c of components) {
    if (c === '' || c === '.' || c === '..' || c.includes('/') || c.includes('\0')) {
      throw new RangeError(`invalid path component: ${JSON.stringify(c)}`);
    }
  }
  return components;
}

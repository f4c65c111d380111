// Writes bytes into a new file below a held directory: exclusive, no-follow, owned, fsynced.
import { open } from 'node:fs/promises';
import type { DirHandle } from './dir-handle.js';
import { at, TEMP_FILE_FLAGS } from './fd-path.js';
import { ownFile } from './ownership.js';
import type { RootOwnership } from './types.js';

export async function writeNewFile(
  dir: DirHandle,
  name: string,
  content: Buffer,
  ownership: RootOwnership,
): Promise<void> {
  const file = await open(at(dir, name), TEMP_FILE_FLAGS, 0o600);
  try {
    let offset = 0;
    while (offset < content.length) {
      const { bytesWritten } = await file.write(content, offset, content.length - offset, offset);
      offset += bytesWritten;
    }
    await ownFile(file, ownership);
    await file.sync();
  } finally {
    await file.close();
  }
}

// Reads an open file chunk by chunk: hashing and gzipping never hold the whole file (nor hit Node's 2 GiB cap).
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { OpIoError } from './op-failure.js';

const CHUNK_BYTES = 1024 * 1024;

/** Each chunk of the file from offset 0 to its end as it is now; chunks are fresh buffers the caller may keep. */
export async function* chunksOf(file: FileHandle): AsyncGenerator<Buffer> {
  let position = 0;
  for (;;) {
    const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
    const { bytesRead } = await file.read(buffer, 0, CHUNK_BYTES, position);
    if (bytesRead === 0) return;
    position += bytesRead;
    yield bytesRead === CHUNK_BYTES ? buffer : buffer.subarray(0, bytesRead);
  }
}

/**
 * The most bytes a file may hold to be hashed (for a listing, a stat, an `expect`): the most content a command may
 * carry at all (maxContentBytes' highest setting), so no state hostfiles writes or captures is ever bigger. A bigger
 * file — a sparse one of terabytes that a state's owner makes in a second — would hold its unit's lock for as long
 * as reading it takes; it fails instead, that unit alone (stat answers io_error, a listing leaves the unit out).
 */
export const MAX_HASHED_BYTES = 1024 * 1024 * 1024;

export const tooBigToHash = (): OpIoError =>
  new OpIoError(`EFBIG (a file over ${MAX_HASHED_BYTES} bytes is not hashed)`);

/** The sha256 and size of the bytes read, streamed; past MAX_HASHED_BYTES (a file still growing) it throws. */
export async function hashFile(file: FileHandle): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of chunksOf(file)) {
    size += chunk.length;
    if (size > MAX_HASHED_BYTES) throw tooBigToHash();
    hash.update(chunk);
  }
  return { sha256: hash.digest('hex'), size };
}

// Reads an open file chunk by chunk: hashing and gzipping never hold the whole file (nor hit Node's 2 GiB cap).
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';

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

/** The sha256 and size of the bytes read, streamed. */
export async function hashFile(file: FileHandle): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of chunksOf(file)) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha256: hash.digest('hex'), size };
}

// Reads an open file chunk by chunk: hashing and gzipping never hold the whole file (nor hit Node's 2 GiB cap).
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { OpIoError } from './op-failure.js';

const CHUNK_BYTES = 1024 * 1024;

/**
 * The most bytes a state may hold to be read or hashed (for a read, a listing, a stat, an `expect`), a file's or a
 * directory's files' together: the most content a command may carry at all (maxContentBytes' highest setting), so
 * no state hostfiles writes is ever bigger. A bigger one — sparse files of terabytes, or thousands of 1 GiB ones,
 * that a state's owner makes in a second — would hold its unit's lock for as long as reading them takes; it fails
 * instead, that unit alone (stat and read answer io_error, a listing leaves the unit out).
 */
export const MAX_HASHED_BYTES = 1024 * 1024 * 1024;

const tooBigToHash = (what: 'a file' | 'a state' = 'a file'): OpIoError =>
  new OpIoError(`EFBIG (${what} over ${MAX_HASHED_BYTES} bytes is not read)`);

/** Refuses a file on its size, before a byte is read (chunksOf stops one that grows past it while read). */
export function refuseOverCap(size: number | bigint): void {
  if (Number(size) > MAX_HASHED_BYTES) throw tooBigToHash();
}

/** Counts the bytes of one state as it is read: past MAX_HASHED_BYTES, in all, it throws (see tooBigToHash). */
export function stateBudget(): (bytes: number | bigint) => void {
  let total = 0;
  return (bytes) => {
    total += Number(bytes);
    if (total > MAX_HASHED_BYTES) throw tooBigToHash('a state');
  };
}

/**
 * Each chunk of the file from offset 0 to its end as it is now; chunks are fresh buffers the caller may keep. Past
 * MAX_HASHED_BYTES (a file that grew after its size was checked) it throws, whoever reads: a hash, a gzip pass. Once
 * `signal` is aborted it throws its reason before the next chunk: a listing out of time stops inside a 1 GiB file.
 */
export async function* chunksOf(file: FileHandle, signal?: AbortSignal): AsyncGenerator<Buffer> {
  let position = 0;
  for (;;) {
    signal?.throwIfAborted();
    const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
    const { bytesRead } = await file.read(buffer, 0, CHUNK_BYTES, position);
    if (bytesRead === 0) return;
    position += bytesRead;
    if (position > MAX_HASHED_BYTES) throw tooBigToHash();
    yield bytesRead === CHUNK_BYTES ? buffer : buffer.subarray(0, bytesRead);
  }
}

/** The sha256 and size of the bytes read, streamed; `signal` as chunksOf's. */
export async function hashFile(file: FileHandle, signal?: AbortSignal): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of chunksOf(file, signal)) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha256: hash.digest('hex'), size };
}

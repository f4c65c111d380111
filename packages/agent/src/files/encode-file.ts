// A file as a read answer carries it: gzipped while streaming when that is smaller, base64, sha256 of the bytes.
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { GZIP_THRESHOLD_BYTES } from '@hostfiles/shared';
import { OpIoError } from './op-failure.js';
import { chunksOf, refuseOverCap } from './stream-file.js';
import type { EncodedFile } from './types.js';

/** Files this small are also kept raw while gzipping, so an incompressible one is not read twice. */
const KEEP_RAW_BYTES = 1024 * 1024;
/**
 * The most encoded bytes one file may take in an answer: 120 MiB, whose base64 is the 160 MiB a read answer carries
 * at most (routes/reads.ts, MAX_READ_CONTENT_CHARS). A 64 MiB AAVMF store fits even if nothing of it compresses.
 */
export const MAX_ENCODED_BYTES = 120 * 1024 * 1024;
const TOO_BIG = 'EFBIG (too large for one answer)';
/** A read that fits no more in this answer, though it may in another. */
export const ANSWER_FULL_MESSAGE = 'EFBIG (the answer is full: read this one in another command)';

/**
 * `roomBytes`: the encoded bytes the answer still has room for. Encoding stops with EFBIG as soon as the file needs
 * more than that, or than MAX_ENCODED_BYTES.
 */
export async function encodeFile(file: FileHandle, sizeNow: number, roomBytes = Infinity): Promise<EncodedFile> {
  // Zeros gzip ~1000:1: the encoded limit alone would let a sparse file be read for hundreds of GiB.
  refuseOverCap(sizeNow);
  const limit = Math.min(roomBytes, MAX_ENCODED_BYTES);
  const tooBig = roomBytes < MAX_ENCODED_BYTES ? ANSWER_FULL_MESSAGE : TOO_BIG;
  const pass = await gzipPass(file, sizeNow <= KEEP_RAW_BYTES, limit, tooBig);
  if (pass.size >= GZIP_THRESHOLD_BYTES && pass.gzip.length < pass.size) {
    return { content: pass.gzip.toString('base64'), encoding: 'gzip', sha256: pass.sha256, size: pass.size };
  }
  if (pass.raw !== undefined) {
    if (pass.raw.length > limit) throw new OpIoError(tooBig);
    return rawEncoding(pass.raw, pass.sha256);
  }
  // Incompressible and large: its bytes are no more than its gzip, so holding them costs what the gzip did.
  const raw = await readRaw(file, limit, tooBig);
  if (sha256Of(raw) !== pass.sha256) throw new OpIoError('EAGAIN (the file changed while it was read)');
  return rawEncoding(raw, pass.sha256);
}

interface GzipPass {
  readonly gzip: Buffer;
  readonly sha256: string;
  readonly size: number;
  readonly raw?: Buffer;
}

async function gzipPass(file: FileHandle, keepRaw: boolean, limit: number, tooBig: string): Promise<GzipPass> {
  const hash = createHash('sha256');
  const rawChunks: Buffer[] = [];
  let size = 0;
  async function* source(): AsyncGenerator<Buffer> {
    for await (const chunk of chunksOf(file)) {
      hash.update(chunk);
      size += chunk.length;
      if (keepRaw && size <= KEEP_RAW_BYTES) rawChunks.push(chunk);
      yield chunk;
    }
  }
  const out: Buffer[] = [];
  let outBytes = 0;
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      outBytes += chunk.length;
      out.push(chunk);
      callback(outBytes > limit ? new OpIoError(tooBig) : null);
    },
  });
  await pipeline(Readable.from(source()), createGzip({ level: 6 }), sink);
  const raw = keepRaw && size <= KEEP_RAW_BYTES ? Buffer.concat(rawChunks, size) : undefined;
  return {
    gzip: Buffer.concat(out, outBytes),
    sha256: hash.digest('hex'),
    size,
    ...(raw === undefined ? {} : { raw }),
  };
}

async function readRaw(file: FileHandle, limit: number, tooBig: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of chunksOf(file)) {
    size += chunk.length;
    if (size > limit) throw new OpIoError(tooBig);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

const sha256Of = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

const rawEncoding = (raw: Buffer, sha256: string): EncodedFile => ({
  content: raw.toString('base64'),
  sha256,
  size: raw.length,
});

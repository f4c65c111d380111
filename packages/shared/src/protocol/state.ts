// What both ends compute the same way: a directory state's digest, and content encoded for the wire.
import { createHash } from 'node:crypto';
import { createGunzip, gunzipSync, gzipSync } from 'node:zlib';
import { err, ok, type Result } from '../result.js';
import type { ContentEncoding } from './schemas.js';

/**
 * The digest of a directory state: SHA-256 over one line per regular file, `<sha256 hex>  <relative path>\n`, in
 * the byte order of the paths' UTF-8 — what `sha256sum` prints for the files of the directory, sorted with LC_ALL=C:
 *   cd DIR && find . -type f ! -name .lock -printf '%P\0' | LC_ALL=C sort -z | xargs -0r sha256sum | sha256sum
 * A name with a backslash, a line feed or a carriage return is printed escaped, as GNU coreutils does it (see
 * checksumLine), so no name can forge a line of another file.
 */
export function stateDigest(files: readonly { readonly path: string; readonly sha256: string }[]): string {
  const sorted = files
    .map((f) => ({ key: Buffer.from(f.path, 'utf8'), line: checksumLine(f.sha256, f.path) }))
    .sort((a, b) => Buffer.compare(a.key, b.key));
  const hash = createHash('sha256');
  for (const { line } of sorted) hash.update(line, 'utf8');
  return hash.digest('hex');
}

const NEEDS_ESCAPE = /[\\\n\r]/;
const ESCAPES: Readonly<Record<string, string>> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r' };

/**
 * One line of `sha256sum` output, byte for byte as GNU coreutils (9.0 and later) prints it: a name holding `\`, `\n`
 * or `\r` starts its line with `\` and has those written `\\`, `\n` and `\r`. (Coreutils before 9.0 leave `\r`
 * as it is: for a name with a carriage return, their pipeline prints another digest.)
 */
function checksumLine(sha256: string, path: string): string {
  if (!NEEDS_ESCAPE.test(path)) return `${sha256}  ${path}\n`;
  return `\\${sha256}  ${path.replace(/[\\\n\r]/g, (c) => ESCAPES[c] ?? c)}\n`;
}

export const sha256Of = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** Content at least this large travels gzipped; below it the header costs more than it saves. */
export const GZIP_THRESHOLD_BYTES = 1024;

export interface EncodedContent {
  /** base64 */
  readonly content: string;
  readonly encoding?: ContentEncoding;
  /** of the bytes themselves */
  readonly sha256: string;
  readonly size: number;
}

/** Bytes as a write or a read answer carries them: gzipped when that pays, base64, with the sha256 of the bytes. */
export function encodeContent(bytes: Uint8Array, sha256 = sha256Of(bytes)): EncodedContent {
  const size = bytes.byteLength;
  if (size >= GZIP_THRESHOLD_BYTES) {
    const gz = gzipSync(bytes, { level: 6 });
    if (gz.byteLength < size) return { content: gz.toString('base64'), encoding: 'gzip', sha256, size };
  }
  return { content: Buffer.from(bytes.buffer, bytes.byteOffset, size).toString('base64'), sha256, size };
}

/**
 * The bytes of wire content, never more than `maxBytes` once decoded (a gzip bomb is refused, not inflated), and
 * checked against `sha256` (and `size`, when given). With `size`, gzip inflates into one buffer of exactly that size;
 * without, zlib's chunks are joined at the end, which briefly holds the output twice. The error says what failed.
 */
export function decodeContent(
  content: string,
  encoding: ContentEncoding | undefined,
  sha256: string,
  maxBytes: number,
  size?: number,
): Result<Buffer, 'too_large' | 'bad_content' | 'sha256_mismatch'> {
  if (size !== undefined && size > maxBytes) return err('too_large');
  const raw = Buffer.from(content, 'base64');
  let bytes: Buffer;
  if (encoding === 'gzip') {
    const limit = Math.max(1, size ?? maxBytes);
    try {
      // One byte more than announced, so a stream longer than its size is caught, not cut.
      bytes = gunzipSync(raw, {
        maxOutputLength: limit,
        ...(size === undefined ? {} : { chunkSize: Math.max(64, size + 1) }),
      });
    } catch (error) {
      return err(error instanceof RangeError ? (size === undefined ? 'too_large' : 'bad_content') : 'bad_content');
    }
  } else bytes = raw;
  if (bytes.byteLength > maxBytes) return err('too_large');
  if (size !== undefined && bytes.byteLength !== size) return err('bad_content');
  return sha256Of(bytes) === sha256 ? ok(bytes) : err('sha256_mismatch');
}

/**
 * Checks wire content against its sha256 and size without holding it decoded: gzip is inflated as a stream and
 * hashed chunk by chunk (memory stays at a chunk, whatever the size), never past `maxBytes`.
 */
export async function verifyContent(
  content: Buffer,
  encoding: ContentEncoding | undefined,
  sha256: string,
  size: number,
  maxBytes: number,
): Promise<Result<number, 'too_large' | 'bad_content' | 'sha256_mismatch'>> {
  if (size > maxBytes) return err('too_large');
  if (encoding !== 'gzip') {
    if (content.byteLength !== size) return err('bad_content');
    return sha256Of(content) === sha256 ? ok(size) : err('sha256_mismatch');
  }
  const hash = createHash('sha256');
  let seen = 0;
  const inflate = createGunzip();
  const outcome = await new Promise<'ok' | 'bad_content'>((resolve) => {
    inflate.on('data', (chunk: Buffer) => {
      seen += chunk.byteLength;
      // More than announced (and announced within the limit): not the content it claims, whatever follows.
      if (seen > size) {
        inflate.destroy();
        resolve('bad_content');
        return;
      }
      hash.update(chunk);
    });
    inflate.once('end', () => {
      resolve('ok');
    });
    inflate.once('error', () => {
      resolve('bad_content');
    });
    inflate.end(content);
  });
  if (outcome !== 'ok') return err(outcome);
  if (seen !== size) return err('bad_content');
  return hash.digest('hex') === sha256 ? ok(size) : err('sha256_mismatch');
}

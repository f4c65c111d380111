// A stored NVRAM as the audit reads it: the bytes as stored when stored plain (no copy), else inflated only up to the
// end of its firmware volume: a 64 MiB AAVMF file holds a volume of 768 KiB, then padding. A blank one (erased flash
// the firmware formats at first boot) is inflated whole but never held: each chunk is checked erased and dropped.
import { createGunzip } from 'node:zlib';
import { err, ok, type Result } from '@hostfiles/shared';
import type { BackupEntry } from '../store/index.js';

/** EFI_FIRMWARE_VOLUME_HEADER.FvLength: a UINT64 at offset 32. */
const FV_LENGTH_AT = 32;
const FV_LENGTH_END = FV_LENGTH_AT + 8;
/** The smallest volume: its header with one block map entry and the terminating one (PiFirmwareVolume.h). */
const MIN_FV_BYTES = 64n;

export type StoredVolume =
  | { readonly kind: 'bytes'; readonly bytes: Uint8Array }
  /** every byte 0x00, or every byte 0xff */
  | { readonly kind: 'erased'; readonly size: number };

export async function storedVolume(entry: BackupEntry): Promise<Result<StoredVolume, string>> {
  if (entry.encoding === 'identity') return ok({ kind: 'bytes', bytes: entry.content });
  return inflateVolume(entry.content, entry.size);
}

const ERASED = [Buffer.alloc(64 * 1024, 0x00), Buffer.alloc(64 * 1024, 0xff)] as const;

/** Whether every byte of `chunk` is 0x00 (or 0xff, as `fill` says). */
function isErased(chunk: Buffer, fill: Buffer): boolean {
  for (let at = 0; at < chunk.byteLength; at += fill.byteLength) {
    const part = chunk.subarray(at, at + fill.byteLength);
    if (!part.equals(fill.subarray(0, part.byteLength))) return false;
  }
  return true;
}

/** Inflates until the volume's declared length (at most `size`, the stored size) is there, then stops. */
function inflateVolume(content: Buffer, size: number): Promise<Result<StoredVolume, string>> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let have = 0;
    let limit = size;
    let erased: Buffer | undefined;
    let settled = false;
    const inflate = createGunzip();
    const settle = (result: Result<StoredVolume, string>): void => {
      if (settled) return;
      settled = true;
      inflate.destroy();
      resolve(result);
    };
    const bytes = (): Result<StoredVolume, string> =>
      ok({ kind: 'bytes', bytes: Buffer.concat(chunks).subarray(0, limit) });
    inflate.on('data', (chunk: Buffer) => {
      if (settled) return;
      have += chunk.byteLength;
      if (erased !== undefined) {
        if (!isErased(chunk, erased)) settle(err('the stored NVRAM is blank at its start but not after: no volume'));
        return;
      }
      chunks.push(chunk);
      if (have - chunk.byteLength < FV_LENGTH_END && have >= FV_LENGTH_END) {
        const head = Buffer.concat(chunks);
        const declared = head.readBigUInt64LE(FV_LENGTH_AT);
        if (declared >= MIN_FV_BYTES && declared <= BigInt(size)) limit = Number(declared);
        else {
          // No plausible volume: blank flash if it is erased to the end; else all of it, for the parser to judge.
          erased = ERASED.find((fill) => isErased(head, fill));
          if (erased !== undefined) chunks.length = 0;
        }
      }
      if (erased === undefined && have >= limit) settle(bytes());
    });
    inflate.once('end', () => {
      if (have < limit) settle(err(`the stored NVRAM inflates to ${have} bytes, not ${size}`));
      else settle(erased === undefined ? bytes() : ok({ kind: 'erased', size }));
    });
    inflate.once('error', (error) => {
      settle(err(`the stored NVRAM does not inflate: ${error.message}`));
    });
    inflate.end(content);
  });
}

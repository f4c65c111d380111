// A stored NVRAM's bytes for the audit: as stored when stored plain (no copy), else inflated only up to the end of
// its firmware volume. A 64 MiB AAVMF file holds a volume of 768 KiB and padding: only the volume is inflated (a
// blank one, all zeros until the firmware formats it, is inflated whole: nothing short of that shows it blank).
import { createGunzip } from 'node:zlib';
import { err, ok, type Result } from '@hostfiles/shared';
import type { BackupEntry } from '../store/index.js';

/** EFI_FIRMWARE_VOLUME_HEADER.FvLength: a UINT64 at offset 32. */
const FV_LENGTH_AT = 32;
const FV_LENGTH_END = FV_LENGTH_AT + 8;
/** The smallest volume: its header with one block map entry and the terminating one (VariableFormat.h). */
const MIN_FV_BYTES = 64n;

export async function storedBytes(entry: BackupEntry): Promise<Result<Uint8Array, string>> {
  if (entry.encoding === 'identity') return ok(entry.content);
  return inflateVolume(entry.content, entry.size);
}

/** Inflates until the volume's declared length (at most `size`, the stored size) is there, then stops. */
function inflateVolume(content: Buffer, size: number): Promise<Result<Uint8Array, string>> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let have = 0;
    let limit = size;
    let settled = false;
    const inflate = createGunzip();
    const settle = (result: Result<Uint8Array, string>): void => {
      if (settled) return;
      settled = true;
      inflate.destroy();
      resolve(result);
    };
    inflate.on('data', (chunk: Buffer) => {
      if (settled) return;
      const before = have;
      chunks.push(chunk);
      have += chunk.byteLength;
      if (before < FV_LENGTH_END && have >= FV_LENGTH_END) {
        const declared = Buffer.concat(chunks, have).readBigUInt64LE(FV_LENGTH_AT);
        // No plausible volume (blank flash, a corrupt header): all of it, for the audit to judge. A volume claiming
        // more than is stored is the parser's to report; what is stored bounds the work.
        if (declared >= MIN_FV_BYTES && declared < BigInt(limit)) limit = Number(declared);
      }
      if (have >= limit) settle(ok(Buffer.concat(chunks, have).subarray(0, limit)));
    });
    inflate.once('end', () => {
      const whole = have >= limit;
      settle(whole ? ok(Buffer.concat(chunks, have)) : err(`the stored NVRAM inflates to ${have} bytes, not ${size}`));
    });
    inflate.once('error', (error) => {
      settle(err(`the stored NVRAM does not inflate: ${error.message}`));
    });
    inflate.end(content);
  });
}

// Strict base64, checked by Node's own decoder rather than a regular expression.

/** Characters decoded a chunk at a time: a multiple of 4, into a scratch buffer of 48 KiB kept for the process. */
const CHUNK_CHARS = 64 * 1024;
let scratch: Buffer | undefined;

/**
 * Whether `text` is padded base64 (RFC 4648 §4): exactly what `/^[A-Za-z0-9+/]*={0,2}$/` with a length that is a
 * multiple of 4 accepts, zod's `z.base64()` (the empty string included). ~4× faster than that expression (18 KiB:
 * 5 µs against 23; 1.9 MB: 0.5 ms against 2.3), which on an agent runs over every command's payload and every file's
 * content. Node's decoder skips a character that is not base64 and an `=` before the end, so it then writes fewer
 * bytes than the length promises; what it would not skip is refused first: a character past ASCII (read by its low
 * byte: `\u012b` as `+`) and base64url's `-` and `_`. Decoded a chunk at a time, so a 128 MiB content needs no 96 MiB
 * buffer to be checked. base64.test.ts holds it to the expression, character by character.
 */
export function isStrictBase64(text: string): boolean {
  const length = text.length;
  if (length % 4 !== 0) return false;
  if (length === 0) return true;
  if (Buffer.byteLength(text, 'utf8') !== length) return false;
  if (text.includes('-') || text.includes('_')) return false;
  scratch ??= Buffer.allocUnsafe((CHUNK_CHARS / 4) * 3);
  for (let start = 0; start < length; start += CHUNK_CHARS) {
    const end = Math.min(start + CHUNK_CHARS, length);
    let padding = 0;
    if (end === length && text.charCodeAt(length - 1) === EQUALS)
      padding = text.charCodeAt(length - 2) === EQUALS ? 2 : 1;
    if (scratch.write(text.slice(start, end), 0, 'base64') !== ((end - start) / 4) * 3 - padding) return false;
  }
  return true;
}

const EQUALS = 0x3d;

// The few DER encodings (X.690) a certificate needs: enough to build one, never to parse one.

export function tlv(tag: number, ...content: readonly Uint8Array[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.of(tag), length(body.length), body]);
}

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.of(n);
  const bytes: number[] = [];
  for (let rest = n; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return Buffer.of(0x80 | bytes.length, ...bytes);
}

export const sequence = (...content: readonly Uint8Array[]): Buffer => tlv(0x30, ...content);
export const set = (...content: readonly Uint8Array[]): Buffer => tlv(0x31, ...content);
export const octetString = (content: Uint8Array): Buffer => tlv(0x04, content);
export const bitString = (content: Uint8Array): Buffer => tlv(0x03, Buffer.of(0), content);
export const utf8String = (text: string): Buffer => tlv(0x0c, Buffer.from(text, 'utf8'));
export const booleanTrue = (): Buffer => tlv(0x01, Buffer.of(0xff));
/** [n] EXPLICIT */
export const explicit = (n: number, ...content: readonly Uint8Array[]): Buffer => tlv(0xa0 | n, ...content);

/** A non-negative INTEGER from its big-endian bytes, in the minimal form DER requires. */
export function unsignedInteger(bytes: Uint8Array): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0 && (bytes[start + 1] ?? 0) < 0x80) start++;
  const trimmed = Buffer.from(bytes.subarray(start));
  // A leading byte with its top bit set would read as negative.
  return tlv(
    0x02,
    (trimmed[0] ?? 0) >= 0x80 || trimmed.length === 0 ? Buffer.concat([Buffer.of(0), trimmed]) : trimmed,
  );
}

export function objectIdentifier(dotted: string): Buffer {
  const [first = 0, second = 0, ...rest] = dotted.split('.').map(Number);
  const bytes: number[] = [first * 40 + second];
  for (const arc of rest) {
    const groups: number[] = [];
    for (let value = arc; ; value = Math.floor(value / 128)) {
      groups.unshift(value % 128);
      if (value < 128) break;
    }
    bytes.push(...groups.map((group, i) => (i < groups.length - 1 ? group | 0x80 : group)));
  }
  return tlv(0x06, Buffer.from(bytes));
}

/** UTCTime (RFC 5280: through 2049) or GeneralizedTime, from `YYYYMMDDHHMMSS`. */
export function time(yyyymmddhhmmss: string): Buffer {
  const year = Number(yyyymmddhhmmss.slice(0, 4));
  return year < 2050
    ? tlv(0x17, Buffer.from(`${yyyymmddhhmmss.slice(2)}Z`, 'ascii'))
    : tlv(0x18, Buffer.from(`${yyyymmddhhmmss}Z`, 'ascii'));
}

export function toPem(label: string, der: Uint8Array): string {
  const lines =
    Buffer.from(der)
      .toString('base64')
      .match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

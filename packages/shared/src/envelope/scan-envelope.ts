// The envelope's cheap pre-parse. A body is read only as far as the envelope's exact shape — one JSON object of the
// three string members keyId, payload and signature, each once — and refused at the first thing that is not: an
// unknown key, a fourth member, a value that is not a string (so no nesting at all). Nothing is built but those
// three strings, so a hostile body costs at most one pass over its bytes, never a general parse of what it holds.
// It accepts exactly what parseStrictJson followed by envelopeSchema accepts (envelope.test.ts checks both agree).
import { err, ok, type Result } from '../result.js';
import { JsonCursor } from '../protocol/json-cursor.js';
import type { Envelope } from '../protocol/schemas.js';
import { isStrictBase64 } from '../util/base64.js';
import { ECHO_MAX_CHARS, truncate } from '../util/echo.js';

const FIELDS = ['keyId', 'payload', 'signature'] as const;
type Field = (typeof FIELDS)[number];

/** The longest spelling of a field name, escapes included: "signature" as nine `\uXXXX` is 54 characters. */
const MAX_KEY_CHARS = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

// The formats of envelopeSchema, checked without zod: this is the part an unauthenticated sender pays for.
const KEY_ID = /^[0-9a-f]{16}$/;
const SIGNATURE = /^[A-Za-z0-9+/]{85}[AQgw]==$/;

class ScanError extends Error {}

/** The envelope in `text`, or why it is not one (a short message that repeats at most a prefix of the input). */
export function scanEnvelope(text: string): Result<Envelope, string> {
  try {
    return ok(checkFormats(new Scanner(text).members()));
  } catch (error) {
    if (error instanceof ScanError) return err(error.message);
    throw error;
  }
}

function checkFormats(fields: Record<Field, string>): Envelope {
  const { keyId, payload, signature } = fields;
  if (!KEY_ID.test(keyId)) throw new ScanError('keyId: lowercase hex of 8 bytes');
  // Exactly envelopeSchema's payload: strict base64 (isStrictBase64), not empty.
  if (payload.length === 0 || !isStrictBase64(payload)) throw new ScanError('payload: base64');
  if (!SIGNATURE.test(signature)) throw new ScanError('signature: base64 of 64 bytes');
  return { keyId, payload, signature };
}

class Scanner extends JsonCursor {
  protected error(message: string, at: number): Error {
    return new ScanError(`${message} at ${String(at)}`);
  }

  members(): Record<Field, string> {
    const found: Partial<Record<Field, string>> = {};
    this.skip();
    this.expect(0x7b, "'{'");
    this.skip();
    if (this.text.charCodeAt(this.pos) === 0x7d) this.pos++;
    else this.memberList(found);
    this.skip();
    if (this.pos !== this.text.length) this.fail('unexpected data after the envelope');
    const { keyId, payload, signature } = found;
    if (keyId === undefined || payload === undefined || signature === undefined) {
      throw new ScanError(`missing ${FIELDS.filter((field) => found[field] === undefined).join(', ')}`);
    }
    return { keyId, payload, signature };
  }

  /** Members until '}'. A fourth is a duplicate or an unknown key, refused as soon as its name is read. */
  private memberList(found: Partial<Record<Field, string>>): void {
    for (;;) {
      this.skip();
      const field = this.key();
      if (found[field] !== undefined) this.fail(`duplicate key "${field}"`);
      this.skip();
      this.expect(0x3a, "':'");
      this.skip();
      if (this.text.charCodeAt(this.pos) !== QUOTE) this.fail(`${field} is not a string`);
      found[field] = this.value();
      this.skip();
      const c = this.text.charCodeAt(this.pos++);
      if (c === 0x7d) return;
      if (c !== 0x2c) this.fail("expected ',' or '}'", -1);
    }
  }

  /** A member's name: read no further than the longest spelling of a field name. */
  private key(): Field {
    if (this.text.charCodeAt(this.pos) !== QUOTE) this.fail('expected a key');
    const start = this.pos;
    const limit = Math.min(this.text.length, start + 1 + MAX_KEY_CHARS + 1);
    let end = -1;
    for (let i = start + 1; i < limit; i++) {
      const c = this.text.charCodeAt(i);
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) {
        end = i;
        break;
      }
    }
    if (end === -1) {
      if (limit === this.text.length) this.fail('unterminated string');
      // Its length is not known, and not worth learning: it is longer than any field name.
      this.fail(`unknown key "${this.text.slice(start + 1, start + 1 + ECHO_MAX_CHARS)}…", longer than any field name`);
    }
    this.pos = end + 1;
    const name = this.decode(start, end);
    if (!(FIELDS as readonly string[]).includes(name)) this.fail(`unknown key "${truncate(name)}"`);
    return name as Field;
  }

  /** A string value of any length: found with indexOf, decoded by JSON.parse only when it holds an escape. */
  private value(): string {
    const start = this.pos;
    const end = this.closingQuote(start);
    if (end === -1) this.fail('unterminated string');
    this.pos = end + 1;
    return this.decode(start, end);
  }

  /**
   * The string between the quotes at `start` and `end`. Without an escape it is taken as it is: a control character
   * (which strict JSON refuses) then fails every field's format, or is no field name, so the outcome is the same.
   */
  private decode(start: number, end: number): string {
    const raw = this.text.slice(start + 1, end);
    if (raw.indexOf('\\') === -1) return raw;
    try {
      return JSON.parse(this.text.slice(start, end + 1)) as string;
    } catch {
      return this.fail('bad string escape', start - this.pos);
    }
  }
}

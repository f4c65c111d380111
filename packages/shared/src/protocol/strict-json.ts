// A JSON parser that refuses duplicate keys, which JSON.parse silently resolves to the last one.
// Two parsers that disagree on a duplicate key are how signed payloads get reinterpreted.
import { err, ok, type Result } from '../result.js';
import { JsonCursor } from './json-cursor.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

class StrictJsonError extends Error {}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const MAX_DEPTH = 64;
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL = /[\u0000-\u001f]/;

export function parseStrictJson(text: string): Result<unknown, string> {
  const parser = new Parser(text);
  try {
    const value = parser.value(0);
    parser.end();
    return ok(value);
  } catch (error) {
    if (error instanceof StrictJsonError) return err(error.message);
    throw error;
  }
}

class Parser extends JsonCursor {
  protected error(message: string, at: number): Error {
    return new StrictJsonError(`invalid JSON at ${String(at)}: ${message}`);
  }

  end(): void {
    this.skip();
    if (this.pos !== this.text.length) this.fail('unexpected data after the JSON value');
  }

  value(depth: number): Json {
    if (depth > MAX_DEPTH) this.fail('nested too deeply');
    this.skip();
    const c = this.text.charCodeAt(this.pos);
    if (c === 0x7b) return this.object(depth);
    if (c === 0x5b) return this.array(depth);
    if (c === 0x22) return this.string();
    if (this.text.startsWith('true', this.pos)) return this.literal(4, true);
    if (this.text.startsWith('false', this.pos)) return this.literal(5, false);
    if (this.text.startsWith('null', this.pos)) return this.literal(4, null);
    return this.number();
  }

  private object(depth: number): Json {
    this.pos++;
    const result: Record<string, Json> = Object.create(null) as Record<string, Json>;
    const seen = new Set<string>();
    this.skip();
    if (this.text.charCodeAt(this.pos) === 0x7d) {
      this.pos++;
      return result;
    }
    for (;;) {
      this.skip();
      if (this.text.charCodeAt(this.pos) !== 0x22) this.fail('expected a key');
      const key = this.string();
      if (seen.has(key)) this.fail(`duplicate key "${key.slice(0, 64)}"`);
      seen.add(key);
      this.skip();
      this.expect(0x3a, "':'");
      result[key] = this.value(depth + 1);
      this.skip();
      const c = this.text.charCodeAt(this.pos++);
      if (c === 0x7d) return result;
      if (c !== 0x2c) this.fail("expected ',' or '}'", -1);
    }
  }

  private array(depth: number): Json {
    this.pos++;
    const result: Json[] = [];
    this.skip();
    if (this.text.charCodeAt(this.pos) === 0x5d) {
      this.pos++;
      return result;
    }
    for (;;) {
      result.push(this.value(depth + 1));
      this.skip();
      const c = this.text.charCodeAt(this.pos++);
      if (c === 0x5d) return result;
      if (c !== 0x2c) this.fail("expected ',' or ']'", -1);
    }
  }

  private string(): string {
    const start = this.pos;
    // Fast path: jump to the closing quote; only strings with escapes go through JSON.parse.
    const end = this.closingQuote(start);
    if (end === -1) this.fail('unterminated string');
    this.pos = end + 1;
    const raw = this.text.slice(start + 1, end);
    if (raw.indexOf('\\') === -1) {
      if (CONTROL.test(raw)) this.fail('control character in string');
      return raw;
    }
    try {
      return JSON.parse(this.text.slice(start, end + 1)) as string;
    } catch {
      return this.fail('bad string escape', start - this.pos);
    }
  }

  private number(): number {
    NUMBER.lastIndex = this.pos;
    const match = NUMBER.exec(this.text);
    if (match === null) this.fail('unexpected character');
    this.pos += match[0].length;
    return Number(match[0]);
  }

  private literal<T extends Json>(length: number, value: T): T {
    this.pos += length;
    return value;
  }
}

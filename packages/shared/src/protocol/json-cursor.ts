// The reading position both JSON readers share: the strict parser (every value) and the envelope's pre-parse
// (three strings). Each says how its errors read; the moves over the text are the same.
const BACKSLASH = 0x5c;

// JSON's whitespace (space, newline, carriage return, tab): single characters compared as numbers, runs skipped by
// the sticky expression (a body of 4 MiB of whitespace, which anyone may send, took 65 ms a character at a time).
const isWhitespace = (code: number): boolean => code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09;
const WHITESPACE_RUN = /[ \n\r\t]*/y;

export abstract class JsonCursor {
  protected pos = 0;
  constructor(protected readonly text: string) {}

  /** The error a reader throws for `message` at offset `at` of the text. */
  protected abstract error(message: string, at: number): Error;

  protected fail(message: string, offset = 0): never {
    throw this.error(message, this.pos + offset);
  }

  protected expect(code: number, what: string): void {
    if (this.text.charCodeAt(this.pos) !== code) this.fail(`expected ${what}`);
    this.pos++;
  }

  protected skip(): void {
    // Most skips find nothing or one character; a long run is left to the regular expression engine, which goes
    // through it several times faster than a loop here.
    if (!isWhitespace(this.text.charCodeAt(this.pos))) return;
    if (!isWhitespace(this.text.charCodeAt(this.pos + 1))) {
      this.pos++;
      return;
    }
    WHITESPACE_RUN.lastIndex = this.pos;
    WHITESPACE_RUN.test(this.text);
    this.pos = WHITESPACE_RUN.lastIndex;
  }

  /**
   * The closing quote of the string whose opening quote is at `start`, found with indexOf (a quote preceded by an odd
   * number of backslashes is escaped); -1 when there is none.
   */
  protected closingQuote(start: number): number {
    let end = this.text.indexOf('"', start + 1);
    while (end !== -1) {
      let backslashes = 0;
      while (this.text.charCodeAt(end - 1 - backslashes) === BACKSLASH) backslashes++;
      if (backslashes % 2 === 0) return end;
      end = this.text.indexOf('"', end + 1);
    }
    return -1;
  }
}

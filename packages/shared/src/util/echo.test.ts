// Echoes of input in errors and logs: short, marked when cut, unknown keys by the first only.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { ECHO_MAX_CHARS, summarize, truncate } from './echo.js';

describe('truncate', () => {
  it('keeps short text and cuts long text to a marked prefix', () => {
    assert.equal(truncate('abc'), 'abc');
    assert.equal(truncate('a'.repeat(ECHO_MAX_CHARS)), 'a'.repeat(ECHO_MAX_CHARS));
    assert.equal(truncate('a'.repeat(1_000_000)), `${'a'.repeat(ECHO_MAX_CHARS)}…(truncated, 1000000 chars)`);
    assert.equal(truncate('abcdef', 2), 'ab…(truncated, 6 chars)');
  });
});

describe('summarize', () => {
  it('names the first of a million unknown keys and counts the rest', () => {
    const input = Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`${'k'.repeat(100)}${i}`, 1]));
    const parsed = z.strictObject({ a: z.string().optional() }).safeParse(input);
    assert.equal(parsed.success, false);
    const text = summarize(parsed.error.issues);
    assert.ok(text.length < 200, text);
    assert.match(text, /^\(root\): unknown key "k{64}…\(truncated, 101 chars\)" and 99999 more$/);
  });

  it('lists at most five issues, each bounded', () => {
    const issues = Array.from({ length: 9 }, (_, i) => ({ path: ['x'.repeat(500), i], message: 'm'.repeat(500) }));
    const text = summarize(issues);
    assert.ok(text.length < 5 * 300, String(text.length));
    assert.match(text, /; and 4 more$/);
  });
});

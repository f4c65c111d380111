import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import type { Entry } from '@hostfiles/shared';
import { checkEntries, decodeWithin, type ContentBudget } from './content.js';

const entry = (path: string, text = path): Entry => ({
  path,
  content: Buffer.from(text).toString('base64'),
  sha256: createHash('sha256').update(text).digest('hex'),
});
const budget = (limit = 1024 * 1024): ContentBudget => ({ limit, left: limit });

test('entries: confined, each once, no file also a parent; decoded within the budget', () => {
  const ok = checkEntries([entry('tpm2/a'), entry('tpm2/b'), entry('top')], budget(), 'item 0');
  assert.ok(ok.ok);
  assert.deepEqual(
    ok.value.map((e) => [e.components, e.content.toString()]),
    [
      [['tpm2', 'a'], 'tpm2/a'],
      [['tpm2', 'b'], 'tpm2/b'],
      [['top'], 'top'],
    ],
  );
  const refusal = (entries: Entry[], left = 1024 * 1024) => {
    const result = checkEntries(entries, budget(left), 'item 3');
    return result.ok ? 'ok' : `${result.error.code}: ${result.error.message}`;
  };
  assert.match(refusal([entry('/abs')]), /^outside_root: item 3 entry 0/);
  assert.match(refusal([entry('a/../b')]), /^outside_root/);
  assert.match(refusal([entry('tpm2/.lock')]), /^outside_root/);
  assert.match(refusal([entry('.hostfiles-tmp-x')]), /^outside_root/);
  assert.match(refusal([entry('tpm2/a\nb')]), /^outside_root: item 3 entry 0: .*line break/);
  assert.match(refusal([entry('a'), entry('a')]), /^bad_request: item 3 entry 1: a is listed twice/);
  assert.match(refusal([entry('tpm2/a'), entry('tpm2')]), /^bad_request: item 3: tpm2 is both a file and a directory/);
  assert.match(refusal([entry('a', 'x'.repeat(10)), entry('b', 'y'.repeat(10))], 15), /^too_large/);
  assert.match(refusal([{ ...entry('a'), sha256: '0'.repeat(64) }]), /^bad_request: .*sha256/);
});

test('the budget is the whole command: what one op decodes is gone for the next; a bomb stops at the budget', () => {
  const shared = budget(100);
  const text = 'z'.repeat(60);
  const content = {
    content: Buffer.from(text).toString('base64'),
    sha256: createHash('sha256').update(text).digest('hex'),
  };
  assert.ok(decodeWithin(content, shared, 'item 0').ok);
  assert.equal(shared.left, 40);
  const second = decodeWithin(content, shared, 'item 1');
  assert.ok(!second.ok && second.error.code === 'too_large' && /100 bytes/.test(second.error.message));
  const zeros = Buffer.alloc(64 * 1024 * 1024);
  const bomb = {
    content: gzipSync(zeros).toString('base64'),
    encoding: 'gzip' as const,
    sha256: createHash('sha256').update(zeros).digest('hex'),
  };
  const refused = decodeWithin(bomb, budget(1024 * 1024), 'item 0');
  assert.ok(!refused.ok && refused.error.code === 'too_large');
  const notGzip = decodeWithin({ ...content, encoding: 'gzip' }, budget(), 'item 0');
  assert.ok(!notGzip.ok && notGzip.error.code === 'bad_request');
});

// What one read answer may carry: its states' JSON, contents and the rest, within what a controller reads.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { buildCommand, MAX_ANSWER_BYTES, type ReadAnswer } from '@hostfiles/shared';
import type { AppDeps } from '../deps.js';
import { MAX_READ_CONTENT_CHARS, prepareRead } from './reads.js';

test('a read answer counts names as well as contents: directories of long-named empty files fill it, the rest fail alone', async () => {
  // A state of 1,000 empty files, each named by a path of ~4 KiB: no content, ~4 MiB of JSON. (One string shared by
  // every entry: the test holds ~4 MB, whatever the answer would weigh.)
  const name = `${'d'.repeat(250)}/`.repeat(16).slice(0, 4000);
  const entry = { path: name, content: '', sha256: '0'.repeat(64), size: 0 };
  const state = { status: 'read', kind: 'dir', sha256: '0'.repeat(64), size: 0, entries: Array(1000).fill(entry) };
  const roots = { TpmState: '/r/tpm', NvRam: '/r/nvram' };
  const hostUuid = randomUUID();
  const deps = { hostUuid, roots, files: { read: () => Promise.resolve(state) } } as unknown as AppDeps;
  const files = Array.from({ length: 60 }, (_, i) => ({ type: 'TpmState' as const, path: `/r/tpm/vm${i}` }));
  const prepared = prepareRead(deps, buildCommand('files.read', hostUuid, { files }, { now: Date.now() }));
  assert.ok(prepared.ok);
  const answer = (await prepared.value.execute(Promise.resolve(), () => undefined)) as ReadAnswer;
  const read = answer.results.filter((r) => r.status === 'read').length;
  const chars = answer.results.reduce((sum, r) => sum + JSON.stringify(r).length, 0);
  assert.ok(read > 0 && read < 60, `${read} of 60 states read`);
  assert.ok(chars <= MAX_READ_CONTENT_CHARS + 60 * 1024, `${chars} chars of results`);
  assert.deepEqual(
    answer.results.slice(read).map((r) => (r.status === 'failed' ? r.error.message : r.status)),
    Array.from({ length: 60 - read }, () => 'EFBIG (the answer is full: read this one in another command)'),
  );
  // Signed, base64 again (4/3), with the rest of the answer: within what a controller reads.
  assert.ok(((chars + 1024) * 4) / 3 < MAX_ANSWER_BYTES);
});

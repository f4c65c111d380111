// What `ops list` and `ops show` say went wrong, from each flow's report as it journals it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { reportError } from './ops.js';

test("a failed operation's reason: its error, else what failed it first, each once; none for one done", () => {
  assert.equal(reportError({ error: 'unreachable: down' }), 'unreachable: down');
  const busy = { path: '/n/a_VARS.fd', status: 'failed', reason: 'busy: a lock is held' };
  assert.equal(reportError({ file: busy }), '/n/a_VARS.fd: busy: a lock is held');
  // A VM sync: its own state not updated (also among its files), before a stale copy elsewhere; counted once.
  const own = { path: '/t/vm', status: 'failed', reason: 'unreachable: down' };
  const stale = { path: '/old/vm', status: 'missing', reason: 'not_found: no such file' };
  assert.equal(
    reportError({ notUpdated: [own], fenced: [], files: [stale, own] }),
    '/t/vm: unreachable: down (and 1 more)',
  );
  const fenced = { path: '/t/vm', code: 'fenced', reason: 'the VM moved' };
  assert.equal(reportError({ notUpdated: [], fenced: [fenced], files: [stale] }), '/t/vm: the VM moved (and 1 more)');
  // A fleet sync as it journals itself: hosts not listed, failed reads with their path and reason.
  assert.equal(
    reportError({ failedHosts: [{ host: 'h-uuid', error: 'timeout: no answer in time' }], read: [] }),
    'h-uuid: timeout: no answer in time',
  );
  assert.equal(
    reportError({ failedHosts: [], read: [{ status: 'read' }, { status: 'failed', path: '/p', reason: 'EFBIG' }] }),
    '/p: EFBIG',
  );
  // Done: a removal's pending deletions are its news, not its error.
  assert.equal(reportError({ files: [{ path: '/p', status: 'unknown', reason: 'x' }] }, 'done'), '');
  assert.equal(reportError(null), '');
});

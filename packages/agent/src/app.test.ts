// The app in-process (app.request, a web-stream body) as well as behind node:http (the test/ suites).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, watch } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildCommand, COMMAND_CONTEXT, signEnvelope, TEMP_PREFIX, writeOp, type ApplyOp } from '@hostfiles/shared';
import { heldSync, settled } from './journal/held-sync.js';
import { testApp } from './test-app.js';

test('in-process: a signed write is applied, an oversized streamed body is refused with 413', async (t) => {
  const { app, roots, hostUuid, controller } = await testApp(t, { maxBodyBytes: 4096 });
  const path = join(roots.TpmState, 'vm', 'state');
  const command = buildCommand(
    'files.apply',
    hostUuid,
    { ops: [writeOp('TpmState', path, Buffer.from('hi'))] },
    { now: Date.now() },
  );
  const ok = await app.request('/v1/files/apply', {
    method: 'POST',
    body: JSON.stringify(signEnvelope(COMMAND_CONTEXT, command, controller)),
  });
  assert.equal(ok.status, 200);
  assert.equal(readFileSync(path, 'utf8'), 'hi');

  const big = buildCommand(
    'files.apply',
    hostUuid,
    { ops: [writeOp('TpmState', join(roots.TpmState, 'big'), Buffer.alloc(8192))] },
    { now: Date.now() },
  );
  const text = JSON.stringify(signEnvelope(COMMAND_CONTEXT, big, controller));
  const stream = new ReadableStream<Uint8Array>({
    start(controllerOfStream) {
      for (let i = 0; i < text.length; i += 1024) controllerOfStream.enqueue(Buffer.from(text.slice(i, i + 1024)));
      controllerOfStream.close();
    },
  });
  const refused = await app.request('/v1/files/apply', { method: 'POST', body: stream, duplex: 'half' });
  assert.equal(refused.status, 413);
  assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'too_large');
  assert.equal(existsSync(join(roots.TpmState, 'big')), false);
});

/** The body of a signed files.apply command of `ops`, for `app`. */
function applyBody(app: Awaited<ReturnType<typeof testApp>>, ops: ApplyOp[]): string {
  const command = buildCommand('files.apply', app.hostUuid, { ops }, { now: Date.now() });
  return JSON.stringify(signEnvelope(COMMAND_CONTEXT, command, app.controller));
}

const post = async (app: Awaited<ReturnType<typeof testApp>>, body: string): Promise<Response> =>
  app.app.request('/v1/files/apply', { method: 'POST', body });

test(
  'a write runs while its journal record syncs, is renamed only once the record is durable, answered only once its answer is',
  { timeout: 20_000 },
  async (t) => {
    const held = heldSync();
    const app = await testApp(t, { journalSync: held.sync });
    const unit = join(app.roots.TpmState, 'vm');
    mkdirSync(unit);
    const target = join(unit, 'tpm2-00.permall');
    // The temp file's creation, seen as it happens: no waiting on a clock.
    const watcher = watch(unit);
    t.after(() => {
      watcher.close();
    });
    const tempMade = new Promise<void>((resolve) => {
      watcher.on('change', (_event, name) => {
        if (String(name).startsWith(TEMP_PREFIX)) resolve();
      });
    });
    const response = post(app, applyBody(app, [writeOp('TpmState', target, Buffer.from('state'))]));
    const record = await held.call(1);
    await tempMade;
    assert.equal(existsSync(target), false, 'not in place before its record is durable');
    record.release();
    const answer = await held.call(2);
    assert.equal(readFileSync(target, 'utf8'), 'state', 'in place once the record is durable');
    assert.equal(await settled(response), false, 'not answered before its answer line is durable');
    answer.release();
    assert.equal((await response).status, 200);
    assert.deepEqual(readdirSync(unit), ['tpm2-00.permall']);
  },
);

test('a write whose journal record fails answers 500 and leaves nothing: no file, no temp file, no directory it made', async (t) => {
  const held = heldSync();
  const app = await testApp(t, { journalSync: held.sync });
  const target = join(app.roots.TpmState, 'vm', 'tpm2', 'tpm2-00.permall');
  const body = applyBody(app, [writeOp('TpmState', target, Buffer.from('state'))]);
  const response = post(app, body);
  (await held.call(1)).fail(Object.assign(new Error('EIO: i/o error, fdatasync'), { errno: -5, code: 'EIO' }));
  const answered = await response;
  assert.equal(answered.status, 500);
  assert.equal(((await answered.json()) as { error: { code: string } }).error.code, 'internal');
  assert.deepEqual(readdirSync(app.roots.TpmState), []);
  // Not recorded, so never run: the same command sent again is new, and runs.
  const again = post(app, body);
  (await held.call(2)).release();
  (await held.call(3)).release();
  assert.equal((await again).status, 200);
  assert.equal(readFileSync(target, 'utf8'), 'state');
});

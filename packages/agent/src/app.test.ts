// The app in-process (app.request, a web-stream body) as well as behind node:http (the test/ suites).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildCommand, COMMAND_CONTEXT, signEnvelope, writeOp } from '@hostfiles/shared';
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

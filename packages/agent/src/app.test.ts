// The app in-process (app.request, a web-stream body) as well as behind node:http (the test/ suites).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  buildCommand,
  COMMAND_CONTEXT,
  generateSigningKey,
  signEnvelope,
  silentLogger,
  trustedKeyFromBase64,
  writeOp,
} from '@hostfiles/shared';
import { createApp } from './app.js';
import type { AgentEvent } from './deps.js';
import { createFileStore } from './files/index.js';
import { openReplayJournal } from './journal/replay-journal.js';
import { createBodyBudget } from './limits/body-budget.js';

test('in-process: a signed write is applied, an oversized streamed body is refused with 413', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hostfiles-app-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const roots = { TpmState: join(dir, 'swtpm'), NvRam: join(dir, 'nvram') };
  for (const root of Object.values(roots)) mkdirSync(root);
  const controller = generateSigningKey();
  const trusted = trustedKeyFromBase64(controller.publicKey);
  const journal = await openReplayJournal({ dir, now: Date.now });
  t.after(() => journal.close());
  const hostUuid = randomUUID();
  const app = createApp({
    hostUuid,
    version: 'test',
    startedAt: 0,
    roots,
    trustedKeys: new Map([[trusted.keyId, trusted]]),
    signer: generateSigningKey(),
    journal,
    files: createFileStore({ roots }),
    logger: silentLogger<AgentEvent>(),
    now: Date.now,
    maxBodyBytes: 4096,
    bodyBudget: createBodyBudget({ limit: 64 * 1024, largeBytesPerSecond: 1024 * 1024, now: Date.now }),
    maxContentBytes: 1024 * 1024,
    clockSkewMs: 30_000,
  });
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

// The app in-process (app.request, a web-stream body) as well as behind node:http (the test/ suites).
import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import {
  buildCommand,
  COMMAND_CONTEXT,
  createLogger,
  signEnvelope,
  TEMP_PREFIX,
  writeOp,
  type ApplyOp,
} from '@hostfiles/shared';
import type { AgentEvent } from './deps.js';
import { FileStoreError } from './files/file-store-error.js';
import type { FileStore } from './files/index.js';
import { MAX_HASHED_BYTES } from './files/stream-file.js';
import { bytesReadByThisProcess } from './files/test-roots.js';
import { heldDirSyncs } from './files/test-roots.js';
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

/** A write's gate, passed on, with a promise of the moment the store first waits on it. */
function watchedGate(): { readonly files: (store: FileStore) => FileStore; readonly reached: Promise<void> } {
  let reach = (): void => undefined;
  const reached = new Promise<void>((resolve) => {
    reach = resolve;
  });
  // A thenable: awaiting it calls `then`, which is how the test sees the op wait (see files/op-timing.test.ts).
  const watched = (gate: Promise<void>): Promise<void> =>
    ({
      then: (onOpen?: () => unknown, onFail?: (error: unknown) => unknown): Promise<unknown> => {
        reach();
        return gate.then(onOpen, onFail);
      },
    }) as unknown as Promise<void>;
  return {
    reached,
    files: (store) => ({
      ...store,
      write: (type, components, content, expect, timing) =>
        store.write(type, components, content, expect, {
          ...timing,
          ...(timing?.gate === undefined ? {} : { gate: watched(timing.gate) }),
        }),
    }),
  };
}

/** Fails, never hangs, if `response` ends before `event`. */
async function before(event: Promise<unknown>, response: Promise<Response>, what: string): Promise<void> {
  const ended = response.then((r) => Promise.reject(new Error(`answered ${r.status} before ${what}`)));
  await Promise.race([event, ended]);
  ended.catch(() => undefined);
}

test(
  'a write makes its temp file while its journal record syncs, renames it only once the record is durable, answers once its answer is',
  { timeout: 20_000 },
  async (t) => {
    const held = heldSync();
    const gate = watchedGate();
    const app = await testApp(t, { journalSync: held.sync, files: gate.files });
    const unit = join(app.roots.TpmState, 'vm');
    const target = join(unit, 'tpm2-00.permall');
    const response = post(app, applyBody(app, [writeOp('TpmState', target, Buffer.from('state'))]));
    const record = await held.call(1);
    await before(gate.reached, response, 'the op reached its gate');
    assert.deepEqual(
      readdirSync(unit).map((name) => name.startsWith(TEMP_PREFIX)),
      [true],
      'at the gate: the temp file made, the target not there',
    );
    record.release();
    const answer = await held.call(2);
    assert.equal(readFileSync(target, 'utf8'), 'state', 'in place once the record is durable');
    assert.equal(await settled(response), false, 'not answered before its answer line is durable');
    answer.release();
    assert.equal((await response).status, 200);
    assert.deepEqual(readdirSync(unit), ['tpm2-00.permall']);
  },
);

test(
  "the answer line syncs alongside the ops' last fsyncs; neither the answer nor a retry of it goes out before both are done",
  { timeout: 20_000 },
  async (t) => {
    const held = heldSync();
    const fsyncs = heldDirSyncs(2);
    // The second look-up of the request in the journal: the retry's, which then waits for the stored answer.
    let checks = 0;
    let retryChecked = (): void => undefined;
    const retryLooked = new Promise<void>((resolve) => {
      retryChecked = resolve;
    });
    const app = await testApp(t, {
      journalSync: held.sync,
      storeHooks: fsyncs.hooks,
      journal: (journal) => ({
        ...journal,
        check: (requestId, hash) => {
          const lookup = journal.check(requestId, hash);
          if (++checks === 2) retryChecked();
          return lookup;
        },
      }),
    });
    const target = join(app.roots.TpmState, 'vm', 'tpm2-00.permall');
    const body = applyBody(app, [writeOp('TpmState', target, Buffer.from('state'))]);
    const response = post(app, body);
    (await held.call(1)).release();
    await before(fsyncs.held, response, 'its directory fsyncs began'); // the unit's and the root's (which gained it)
    const answerLine = held.call(2);
    await before(answerLine, response, 'its answer line was written');
    const line = await answerLine;
    line.release();
    await line.synced;
    const retry = post(app, body); // the same bytes: a retry, served from the journal
    await before(retryLooked, retry, 'the retry looked the request up');
    assert.equal(await settled(response), false, 'the answer line is durable, the fsyncs are not: no answer yet');
    assert.equal(await settled(retry), false, 'nor for a retry');
    fsyncs.release();
    const [first, again] = await Promise.all([response, retry]);
    assert.equal(first.status, 200);
    assert.equal(again.status, 200);
    assert.equal(await again.text(), await first.text(), 'the retry gets the stored answer');
    assert.equal(held.count(), 2, 'the retry wrote nothing to the journal');
  },
);

test(
  'a write whose journal record fails answers 500 and leaves nothing: no file, no temp file, no directory it made',
  { timeout: 20_000 },
  async (t) => {
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
  },
);

test('a listing of both roots that fails in one stops the other: the 1 GiB file it would hash is left unread', async (t) => {
  let otherRoot: Promise<unknown> | undefined;
  const app = await testApp(t, {
    files: (store) => ({
      ...store,
      list: (type, budget) => {
        // The NvRam root cannot be listed (as when its directory is gone); the TpmState one is being hashed.
        if (type === 'NvRam') return Promise.reject(new FileStoreError('cannot list the NvRam root: EIO', eio));
        const listing = store.list(type, budget);
        otherRoot = listing;
        return listing;
      },
    }),
  });
  // 1 GiB of holes: seconds to read and hash, were it read to its end.
  const big = join(app.roots.TpmState, 'big');
  closeSync(openSync(big, 'w'));
  truncateSync(big, MAX_HASHED_BYTES);
  const command = buildCommand('files.list', app.hostUuid, { types: ['TpmState', 'NvRam'] }, { now: Date.now() });
  const read = bytesReadByThisProcess();
  const answer = await app.app.request('/v1/files/list', {
    method: 'POST',
    body: JSON.stringify(signEnvelope(COMMAND_CONTEXT, command, app.controller)),
  });
  assert.equal(answer.status, 500, 'the listing failed');
  assert.deepEqual(await otherRoot, [], 'the other root listed nothing once the listing was over');
  const readWhileListing = bytesReadByThisProcess() - read;
  assert.ok(
    readWhileListing < MAX_HASHED_BYTES / 2,
    `the other root stopped, not hashed on unread: ${readWhileListing} bytes read of its ${MAX_HASHED_BYTES}`,
  );
});

const eio = { code: 'EIO', cause: undefined };

test('signed commands refused at checks 5–8 (here another host, replayed at will) are logged at a bounded rate; one refused at check 9 always', async (t) => {
  let now = Date.now();
  const lines: { event: string; code?: string; skipped?: number }[] = [];
  const logger = createLogger<AgentEvent>({ write: (line) => lines.push(JSON.parse(line) as (typeof lines)[number]) });
  const app = await testApp(t, { now: () => now, logger });
  const elsewhere = buildCommand(
    'files.apply',
    randomUUID(),
    { ops: [writeOp('TpmState', join(app.roots.TpmState, 'vm'), Buffer.from('x'))] },
    { now },
  );
  // One envelope the controller signed once, for another host: whoever saw it can send it again and again.
  const body = JSON.stringify(signEnvelope(COMMAND_CONTEXT, elsewhere, app.controller));
  for (let i = 0; i < 50; i++) assert.equal((await post(app, body)).status, 403);
  const refused = (): typeof lines => lines.filter((l) => l.event === 'refused');
  assert.deepEqual(
    refused().map((l) => l.code),
    Array.from({ length: 20 }, () => 'wrong_host'),
    '20 in a second, the other 30 counted',
  );
  // A trusted controller's command refused at check 9 is logged even now.
  assert.equal((await post(app, applyBody(app, [writeOp('TpmState', '/etc/x', Buffer.from('x'))]))).status, 403);
  assert.equal(refused().at(-1)?.code, 'outside_root');
  now += 1000;
  await post(app, body);
  assert.deepEqual(refused().at(-1), { ...refused().at(-1), code: 'wrong_host', skipped: 30 });
});

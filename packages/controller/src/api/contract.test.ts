// Every answer the API gives is one its OpenAPI document describes: each route is exercised for its success and for
// errors of its own, in-process over a real SQLite file, with real agent processes where a flow needs one; each
// answer's status must be listed for its route and its body valid (ajv, strict) against the schema listed for it.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Hono } from 'hono';
import { fileState } from '../flows/index.js';
import { startLocalAgent, type LocalAgent } from '../local/local-agents.js';
import { OPENAPI_DOCUMENT } from './openapi.js';
import { createContract, uncovered } from './contract-support.js';
import { AUTH, b64, checkedCaller, createTestApi, expectError, expectStatus, holdLock, put } from './test-support.js';

const contract = createContract();
const caller = (app: Hono) => checkedCaller(app, contract);
const DOWN = 'http://127.0.0.1:1'; // nothing listens: the connection is refused at once

test('the document compiles strictly and is served as it is', async (t) => {
  const { app } = await createTestApi(t);
  const call = caller(app);
  expectStatus(await call('GET', '/v1/health', undefined, {}), 200);
  assert.deepEqual(
    expectStatus(await call('GET', '/v1/openapi.json'), 200),
    JSON.parse(JSON.stringify(OPENAPI_DOCUMENT)),
  );
  for (const route of contract.documented.keys()) {
    const [method = '', path = ''] = route.split(' ');
    if (route === 'GET /v1/health') continue;
    expectError(await call(method, path.replace(/\{\w+\}/g, 'x'), undefined, {}), 401, 'unauthorized');
  }
  const schemas = OPENAPI_DOCUMENT.components.schemas;
  for (const [id, schema] of Object.entries(schemas)) {
    // Every object, however deep, is closed: a field the document does not name is never sent.
    const objects = JSON.stringify(schema).split('"type":"object"').length - 1;
    const closed = JSON.stringify(schema).split('"additionalProperties":false').length - 1;
    assert.equal(closed, objects, `${id}: every object is closed`);
  }
});

test('without agents: inventory, errors of every kind, the outbox of a write whose outcome is unknown', async (t) => {
  const { app, store } = await createTestApi(t);
  const call = caller(app);

  assert.deepEqual(expectStatus(await call('GET', '/v1/hosts'), 200), { hosts: [] });
  expectError(await call('POST', '/v1/hosts', { name: 'h' }), 400, 'bad_request');
  expectError(await call('POST', '/v1/hosts', { name: 'h', url: 'ftp://h' }), 400, 'bad_request');
  expectError(await call('POST', '/v1/hosts', { name: 'h', url: DOWN }), 400, 'bad_request');
  expectError(
    await call('POST', '/v1/hosts', { name: 'h', url: DOWN, expectKey: '0123456789abcdef' }),
    400,
    'bad_request',
  );
  expectError(
    await call('POST', '/v1/hosts', { name: 'h', url: 'http://10.0.0.1:7441', trustOnFirstUse: true }),
    400,
    'bad_request',
  );
  expectError(
    await call('POST', '/v1/hosts', { name: 'h', url: DOWN, trustOnFirstUse: true }),
    502,
    'agent_unreachable',
  );
  // Hosts whose agent is down: enough for every flow that needs no answer from one.
  for (const name of ['h0', 'h1']) {
    await store.addHost({
      uuid: randomUUID(),
      name,
      url: DOWN,
      publicKey: b64('k'.repeat(32)),
      keyId: '0123456789abcdef',
      certificate: null,
      state: 'Connected',
      lastSeenAt: null,
    });
  }
  assert.equal(expectStatus(await call<{ hosts: unknown[] }>('GET', '/v1/hosts'), 200).hosts.length, 2);

  // A VM with libvirt's uuid (not v4: any lowercase uuid), and its TPM.
  const domain = '0f8fad5b-d9cb-069f-0165-70867728950e';
  const vm = { name: 'a', host: 'h0', bootMode: 'UEFI', secureBoot: false, uuid: domain };
  assert.equal(expectStatus(await call<{ uuid: string }>('POST', '/v1/vms', vm), 201).uuid, domain);
  const upper = expectError(await call('POST', '/v1/vms', { ...vm, uuid: domain.toUpperCase() }), 400, 'bad_request');
  assert.deepEqual(
    upper.problems?.map((p) => p.path),
    ['uuid'],
  );
  expectError(await call('POST', '/v1/vms', { ...vm, name: 'b', host: 'nope' }), 404, 'not_found');
  expectError(await call('POST', '/v1/vms', { ...vm, name: 'b' }), 409, 'conflict');
  expectStatus(await call('POST', '/v1/vms', { ...vm, name: 'b', uuid: randomUUID() }), 201);
  expectStatus(await call('POST', '/v1/vms/a/tpm', { keyProvider: 'kms' }), 201);
  expectError(await call('POST', '/v1/vms/a/tpm', { keyProvider: 'kms' }), 409, 'conflict');
  expectError(await call('POST', '/v1/vms/a/tpm', {}), 400, 'bad_request');
  expectError(await call('POST', '/v1/vms/nope/tpm', { keyProvider: 'kms' }), 404, 'not_found');
  // A VM with a TPM matches VmWithTpm (an allOf of the closed Vm and more could match none).
  const { vms } = expectStatus(await call<{ vms: { name: string; tpm: unknown }[] }>('GET', '/v1/vms'), 200);
  assert.deepEqual(
    vms.map((v) => [v.name, v.tpm !== null]),
    [
      ['a', true],
      ['b', false],
    ],
  );

  assert.deepEqual(expectStatus(await call('GET', '/v1/vms/a/files'), 200), { files: [] });
  expectError(await call('GET', '/v1/vms/nope/files'), 404, 'not_found');
  assert.deepEqual(expectStatus(await call('GET', '/v1/vms/a/backups'), 200), { backups: [] });
  expectError(await call('GET', '/v1/vms/nope/backups'), 404, 'not_found');

  const moved = expectStatus(
    await call<{ from: { hostName: string }; to: { hostName: string } }>('POST', '/v1/vms/a/move', { host: 'h1' }),
    200,
  );
  assert.deepEqual([moved.from.hostName, moved.to.hostName], ['h0', 'h1']);
  expectError(await call('POST', '/v1/vms/a/move', {}), 400, 'bad_request');
  expectError(await call('POST', '/v1/vms/a/move', { host: 'nope' }), 404, 'not_found');

  const synced = expectStatus(await call<{ files: unknown[]; commands: number }>('POST', '/v1/vms/a/sync'), 200);
  assert.deepEqual([synced.files, synced.commands], [[], 0], 'nothing recorded, nothing read');
  expectError(await call('POST', '/v1/vms/nope/sync'), 404, 'not_found');
  assert.match(expectError(await call('POST', '/v1/vms/a/restore'), 404, 'not_found').message, /no backup/);
  expectError(await call('POST', '/v1/vms/a/restore', { force: 'yes' }), 400, 'bad_request');
  // A backup as a sync would have left it: restoring it asks h1 (down) where libvirt's layout is.
  const vars = fileState(Buffer.from('vars of a'));
  await store.recordGeneration({
    uuid: randomUUID(),
    vmUuid: domain,
    type: 'NvRam',
    ...vars,
    source: 'sync',
    hostUuid: null,
  });
  const { backups } = expectStatus(await call<{ backups: { sha256: string }[] }>('GET', '/v1/vms/a/backups'), 200);
  assert.deepEqual(
    backups.map((b) => b.sha256),
    [vars.sha256],
  );
  expectError(await call('POST', '/v1/vms/a/restore'), 502, 'agent_unreachable');

  // Flows that need an answer from the agent: it is down.
  expectError(await call('POST', '/v1/vms/a/adopt'), 502, 'agent_unreachable');
  expectError(await call('POST', '/v1/vms/a/adopt', { paths: { Swap: '/x' } }), 400, 'bad_request');
  expectError(await call('POST', '/v1/vms/nope/adopt', {}), 404, 'not_found');
  expectError(await call('POST', '/v1/hosts/h0/reconcile', {}), 502, 'agent_unreachable');
  const unknownAlone = expectError(
    await call('POST', '/v1/hosts/h0/reconcile', { includeUnknown: true }),
    400,
    'bad_request',
  );
  assert.deepEqual(
    unknownAlone.problems?.map((p) => p.path),
    ['includeUnknown'],
  );
  expectError(await call('POST', '/v1/hosts/nope/reconcile'), 404, 'not_found');

  // A write to a host that is down: its outcome is unknown, so it is guarded by a conditional deletion.
  const nvram = '/var/lib/libvirt/qemu/nvram/a_VARS.fd';
  const write = { vm: 'a', type: 'NvRam', path: nvram, content: b64('vars of a') };
  expectError(await call('POST', '/v1/files', write), 502, 'agent_unreachable');
  const both = expectError(await call('POST', '/v1/files', { ...write, entries: [] }), 400, 'bad_request');
  assert.ok((both.problems?.length ?? 0) > 0);
  expectError(await call('POST', '/v1/files', { ...write, vm: 'nope' }), 404, 'not_found');
  const inside = { ...write, vm: 'b', path: `${nvram}/x`, host: 'h1' };
  assert.match(expectError(await call('POST', '/v1/files', inside), 409, 'conflict').message, /pending deletion/);
  type Pending = {
    pending: { path: string; expectSha256: string | null; vmName: string | null; vmDestroyed: boolean }[];
  };
  const { pending } = expectStatus(await call<Pending>('GET', '/v1/pending'), 200);
  assert.deepEqual(
    pending.map((p) => [p.path, typeof p.expectSha256, p.vmName, p.vmDestroyed]),
    [[nvram, 'string', 'a', false]],
  );
  const retried = expectStatus(await call<{ attempted: number; stillPending: number }>('POST', '/v1/retry'), 200);
  assert.deepEqual([retried.attempted, retried.stillPending], [1, 1]);

  // The journal: the write whose outcome is unknown ended failed, saying why, as did the reconcile of a host down.
  type Op = { id: string; kind: string; state: string; subjectName: string; report: { error?: string } | null };
  type Ops = { operations: Op[] };
  const all = expectStatus(await call<Ops>('GET', '/v1/operations'), 200).operations;
  assert.deepEqual(
    all.map((o) => [o.kind, o.state, o.subjectName]),
    [
      ['file.write', 'failed', 'a'],
      ['host.reconcile', 'failed', 'h0'],
      ['vm.sync', 'done', 'a'],
    ],
    'newest first, each named',
  );
  const failedWrites = expectStatus(
    await call<Ops>('GET', '/v1/operations?state=failed&kind=file.write&limit=1'),
    200,
  ).operations;
  assert.deepEqual(
    failedWrites.map((o) => o.id),
    [all[0]?.id],
  );
  assert.match(failedWrites[0]?.report?.error ?? '', /unreachable/);
  assert.deepEqual(expectStatus(await call<Ops>('GET', '/v1/operations?limit=1&state=running'), 200).operations, []);
  for (const query of ['limit=0', 'limit=1001', 'limit=x', 'state=stuck', 'kinds=x', 'limit=1&limit=2']) {
    const error = expectError(await call('GET', `/v1/operations?${query}`), 400, 'bad_request');
    // One problem a parameter: a limit that is not digits is not also out of range.
    assert.equal(error.problems?.length, 1, JSON.stringify(error.problems));
  }
  const one = expectStatus(
    await call<{ id: string; subjectName: string; input: { path?: string } }>(
      'GET',
      `/v1/operations/${all[0]?.id ?? ''}`,
    ),
    200,
  );
  assert.deepEqual([one.id, one.subjectName, one.input.path], [all[0]?.id, all[0]?.subjectName, nvram]);
  expectError(await call('GET', `/v1/operations/${randomUUID()}`), 404, 'not_found');

  const removal = expectStatus(
    await call<{ vms: { binding: string }[] }>('POST', '/v1/tpms/remove', { vms: ['a'] }),
    200,
  );
  assert.deepEqual(
    removal.vms.map((v) => v.binding),
    ['detached'],
  );
  expectError(await call('POST', '/v1/tpms/remove', { vms: ['a'] }), 404, 'not_found');
  expectError(await call('POST', '/v1/tpms/remove', { vms: [], force: true }), 400, 'bad_request');

  expectError(await call('DELETE', '/v1/vms/a?force=yes'), 400, 'bad_request');
  expectError(await call('DELETE', '/v1/vms/a?force=true&force=false'), 400, 'bad_request');
  expectError(await call('DELETE', '/v1/vms/a?forse=true'), 400, 'bad_request');
  expectError(await call('DELETE', '/v1/vms/nope'), 404, 'not_found');
  const destroyed = expectStatus(await call<{ vmName: string; tpm: unknown }>('DELETE', '/v1/vms/a?force=false'), 200);
  assert.deepEqual([destroyed.vmName, destroyed.tpm], ['a', null]);
  // Its write's guard still waits on the host that is down: its name kept, the VM gone.
  assert.deepEqual(
    expectStatus(await call<Pending>('GET', '/v1/pending'), 200).pending.map((p) => [p.path, p.vmName, p.vmDestroyed]),
    [[nvram, 'a', true]],
  );

  const oversized = await app.request('/v1/vms', {
    method: 'POST',
    headers: { ...AUTH, 'content-length': String(64 * 1024 * 1024) },
    body: '{}',
  });
  contract.check('POST', '/v1/vms', oversized.status, await oversized.json());
  assert.equal(oversized.status, 413);
});

test('an error inside the controller answers 500 as the document says', async (t) => {
  const { app, store } = await createTestApi(t);
  const call = caller(app);
  await store.close();
  assert.match(expectError(await call('GET', '/v1/hosts'), 500, 'internal').message, /^internal error \(/);
});

test('with real agents: adopt, sync, move, restore, writes, busy state, reconcile, destroy', async (t) => {
  const { app, key } = await createTestApi(t);
  const call = caller(app);
  const dir = mkdtempSync(join(tmpdir(), 'hostfiles-contract-'));
  const agents: LocalAgent[] = [];
  t.after(async () => {
    await Promise.all(agents.map((agent) => agent.stop()));
    rmSync(dir, { recursive: true, force: true });
  });
  agents.push(...(await Promise.all(['h0', 'h1'].map((name) => startLocalAgent(dir, name, key.publicKey)))));
  const [a0, a1] = agents as [LocalAgent, LocalAgent];

  const mismatch = { name: 'h0', url: a0.url, expectKey: a1.publicKey };
  expectError(await call('POST', '/v1/hosts', mismatch), 409, 'host_key_mismatch');
  for (const agent of agents) {
    const host = expectStatus(
      await call<{ uuid: string; certificate: string }>('POST', '/v1/hosts', {
        name: agent.name,
        url: agent.url,
        expectKey: agent.publicKey,
      }),
      201,
    );
    assert.equal(host.uuid, agent.hostUuid, "the agent's uuid, pinned");
    assert.match(host.certificate, /^-----BEGIN CERTIFICATE-----/, 'and its certificate');
  }
  expectError(await call('POST', '/v1/hosts', { name: 'h0', url: a1.url, expectKey: a1.publicKey }), 409, 'conflict');

  // libvirt made web's state on h0: a vTPM directory and an NVRAM file, where its layout puts them.
  const web = randomUUID();
  const vm = { name: 'web', host: 'h0', bootMode: 'UEFI', secureBoot: false, uuid: web };
  expectStatus(await call('POST', '/v1/vms', vm), 201);
  expectStatus(await call('POST', '/v1/vms/web/tpm', { keyProvider: 'kms' }), 201);
  put(join(a0.roots.TpmState, web, 'tpm2', 'tpm2-00.permall'), 'permall of web');
  put(join(a0.roots.NvRam, 'web_VARS.fd'), 'vars of web');

  // A path outside the agent's roots is the caller's error, not the agent's.
  const outside = join(dir, 'elsewhere', 'web_VARS.fd');
  const refused = expectError(
    await call('POST', '/v1/vms/web/adopt', { paths: { NvRam: outside } }),
    400,
    'bad_request',
  );
  assert.match(refused.message, /outside_root/);
  const adopted = expectStatus(
    await call<{
      operationId: string;
      states: { type: string; status: string; kind?: string }[];
      backup: { backups: unknown[] } | null;
    }>('POST', '/v1/vms/web/adopt', { backup: true }),
    200,
  );
  assert.deepEqual(adopted.states.map((s) => [s.type, s.status, s.kind]).sort(), [
    ['NvRam', 'adopted', 'file'],
    ['TpmState', 'adopted', 'dir'],
  ]);
  assert.equal(adopted.backup?.backups.length, 2);
  // Journaled like every flow: started and finished in the transaction that recorded the states.
  const adoptOp = expectStatus(
    await call<{ kind: string; state: string }>('GET', `/v1/operations/${adopted.operationId}`),
    200,
  );
  assert.deepEqual([adoptOp.kind, adoptOp.state], ['vm.adopt', 'done']);
  expectStatus(await call('POST', '/v1/vms', { ...vm, name: 'other', uuid: randomUUID() }), 201);
  const taken = { paths: { TpmState: join(a0.roots.TpmState, web) } };
  expectError(await call('POST', '/v1/vms/other/adopt', taken), 409, 'conflict');
  const files = expectStatus(await call<{ files: { kind: string }[] }>('GET', '/v1/vms/web/files'), 200).files;
  assert.deepEqual(files.map((f) => f.kind).sort(), ['dir', 'file']);
  assert.equal(expectStatus(await call<{ backups: unknown[] }>('GET', '/v1/vms/web/backups'), 200).backups.length, 2);
  const synced = expectStatus(await call<{ files: { status: string }[] }>('POST', '/v1/vms/web/sync'), 200);
  assert.deepEqual(
    synced.files.map((f) => f.status),
    ['read', 'read'],
  );
  // Fleet sync: nothing changed since, nothing read; then a changed NVRAM on h0 read alone; refusals.
  const idle = expectStatus(await call<{ read: unknown[]; totals: { unchanged: number } }>('POST', '/v1/sync'), 200);
  assert.deepEqual([idle.read.length, idle.totals.unchanged], [0, 2]);
  const webVars = join(a0.roots.NvRam, 'web_VARS.fd');
  const vars = readFileSync(webVars);
  writeFileSync(webVars, 'the firmware wrote a variable');
  const fleet = expectStatus(
    await call<{ read: { type: string; why: string }[] }>('POST', '/v1/sync', { hosts: ['h0'] }),
    200,
  );
  assert.deepEqual(
    fleet.read.map((f) => [f.type, f.why]),
    [['NvRam', 'changed']],
  );
  writeFileSync(webVars, vars); // as it was: what follows restores it
  expectStatus(await call('POST', '/v1/sync', { hosts: ['h0'] }), 200);
  expectError(await call('POST', '/v1/sync', { hosts: ['nope'] }), 404, 'not_found');
  expectError(await call('POST', '/v1/sync', { hosts: 'h0' }), 400, 'bad_request');

  // libvirt moved web to h1 without its state: restore it there.
  const moved = expectStatus(await call<{ elsewhere: unknown[] }>('POST', '/v1/vms/web/move', { host: 'h1' }), 200);
  assert.equal(moved.elsewhere.length, 2);
  // A path outside h1's roots: the agent refuses the command, and that is the caller's error.
  const astray = { paths: { NvRam: join(dir, 'elsewhere', 'web_VARS.fd') } };
  const refusedRestore = expectError(await call('POST', '/v1/vms/web/restore', astray), 400, 'bad_request');
  assert.match(refusedRestore.message, /outside_root/);
  // By default, libvirt's layout below h1's roots.
  const paths = { TpmState: join(a1.roots.TpmState, web), NvRam: join(a1.roots.NvRam, 'web_VARS.fd') };
  const restored = expectStatus(
    await call<{ files: { path: string; status: string }[] }>('POST', '/v1/vms/web/restore'),
    200,
  );
  assert.deepEqual(
    restored.files.map((f) => f.path),
    [paths.NvRam, paths.TpmState],
  );
  assert.deepEqual(
    restored.files.map((f) => f.status),
    ['written', 'written'],
  );
  assert.equal(readFileSync(paths.NvRam, 'utf8'), 'vars of web');
  const elsewhere = { paths: { NvRam: join(a1.roots.NvRam, 'web-2_VARS.fd') } };
  expectError(await call('POST', '/v1/vms/web/restore', elsewhere), 409, 'conflict');
  // `type`: that type's newest backup alone; web's TPM state on h1, changed since and never synced, is not touched.
  rmSync(paths.NvRam);
  const permall = join(paths.TpmState, 'tpm2', 'tpm2-00.permall');
  writeFileSync(permall, 'the guest wrote its TPM');
  const nvramOnly = expectStatus(
    await call<{ files: { type: string; status: string }[] }>('POST', '/v1/vms/web/restore', { type: 'NvRam' }),
    200,
  );
  assert.deepEqual(
    nvramOnly.files.map((f) => [f.type, f.status]),
    [['NvRam', 'written']],
  );
  assert.equal(readFileSync(paths.NvRam, 'utf8'), 'vars of web');
  assert.equal(readFileSync(permall, 'utf8'), 'the guest wrote its TPM');
  const notRestored = { type: 'NvRam', paths: { TpmState: paths.TpmState } };
  expectError(await call('POST', '/v1/vms/web/restore', notRestored), 400, 'bad_request');
  expectError(await call('POST', '/v1/vms/web/restore', { type: 'Disk' }), 400, 'bad_request');
  writeFileSync(permall, 'permall of web'); // as recorded again

  // Writes: a directory state, unknown state refused unless forced, a path outside the roots refused.
  const db = randomUUID();
  expectStatus(await call('POST', '/v1/vms', { ...vm, name: 'db', host: 'h1', uuid: db }), 201);
  const entries = [{ path: 'tpm2/tpm2-00.permall', content: b64('permall of db') }];
  const tpmState = { vm: 'db', type: 'TpmState', path: join(a1.roots.TpmState, db), entries };
  assert.equal(expectStatus(await call<{ kind: string }>('POST', '/v1/files', tpmState), 201).kind, 'dir');
  const stray = join(a1.roots.NvRam, 'db_VARS.fd');
  put(stray, "libvirt's");
  const nvram = { vm: 'db', type: 'NvRam', path: stray, content: b64('vars of db') };
  assert.match(expectError(await call('POST', '/v1/files', nvram), 409, 'conflict').message, /adopt it/);
  expectStatus(await call('POST', '/v1/files', { ...nvram, force: true }), 201);
  assert.equal(readFileSync(stray, 'utf8'), 'vars of db');
  const beyond = { ...nvram, path: join(dir, 'elsewhere', 'db_VARS.fd') };
  // Outside the agent's roots: the caller's error, as for adopt and restore.
  assert.match(expectError(await call('POST', '/v1/files', beyond), 400, 'bad_request').message, /outside_root/);

  // web runs: its NVRAM is held open. Neither destroyed nor its TPM removed unless forced.
  const lock = await holdLock(paths.NvRam);
  t.after(() => lock.release());
  expectError(await call('DELETE', '/v1/vms/web'), 409, 'busy');
  expectError(await call('POST', '/v1/tpms/remove', { vms: ['web'] }), 409, 'busy');
  const forced = expectStatus(
    await call<{ pending: { path: string }[] }>('POST', '/v1/tpms/remove', { vms: ['web'], force: true }),
    200,
  );
  assert.deepEqual(
    forced.pending.map((p) => p.path),
    [paths.NvRam],
    'the NVRAM in use waits in the outbox',
  );
  await lock.release();
  const retried = expectStatus(await call<{ confirmed: number; stillPending: number }>('POST', '/v1/retry'), 200);
  assert.deepEqual([retried.confirmed, retried.stillPending], [1, 0]);

  // Reconcile h0: state no row accounts for and hostfiles never wrote is unknown; scheduled only when asked.
  const stranger = join(a0.roots.TpmState, randomUUID());
  put(join(stranger, 'tpm2', 'tpm2-00.permall'), 'whose?');
  const listed = expectStatus(
    await call<{ unknown: { path: string }[]; scheduled: string[] }>('POST', '/v1/hosts/h0/reconcile'),
    200,
  );
  assert.deepEqual([listed.unknown.map((u) => u.path), listed.scheduled], [[stranger], []]);
  const applied = expectStatus(
    await call<{ scheduled: string[] }>('POST', '/v1/hosts/h0/reconcile', {
      apply: true,
      includeUnknown: true,
    }),
    200,
  );
  assert.deepEqual(applied.scheduled, [stranger]);

  const destroyed = expectStatus(
    await call<{ hosts: { files: { status: string }[] }[] }>('DELETE', '/v1/vms/db?force=true'),
    200,
  );
  assert.deepEqual(
    destroyed.hosts.flatMap((h) => h.files.map((f) => f.status)),
    ['deleted', 'deleted'],
  );
  expectStatus(await call('GET', '/v1/pending'), 200);
});

test('every documented route was answered with its success and with an error of its own', () => {
  assert.deepEqual(uncovered(contract), []);
});

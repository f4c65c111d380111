// The floor server (floor-server.ts) keeps the promises it is the floor of: a figure measured against a server that
// skipped one of them would say nothing about the agent.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { test, type TestContext } from 'node:test';
import {
  ANSWER_CONTEXT,
  buildCommand,
  COMMAND_CONTEXT,
  deleteOp,
  generateSigningKey,
  parseEnvelope,
  signEnvelope,
  stopChild,
  trustedKeyFromBase64,
  verifyEnvelope,
  writeOp,
  type ApplyOp,
} from '@hostfiles/shared';
import { flockAvailable, holdFlock } from '../files/test-roots.js';
import type { FloorConfig } from './floor-server.js';
import { transportKit } from './transport.js';

const SERVER = fileURLToPath(new URL('./floor-server.js', import.meta.url));

async function startFloor(t: TestContext) {
  const dir = mkdtempSync(join(tmpdir(), 'hf-floor-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const root = join(dir, 'root');
  const stateDir = join(dir, 'state');
  mkdirSync(root);
  mkdirSync(stateDir);
  const controller = generateSigningKey();
  const server = generateSigningKey();
  const identities = { serverKeyPem: server.pem, clientKeyPem: controller.pem };
  const hostUuid = '6f1c1d2e-8a4b-4c3d-9e5f-0a1b2c3d4e5f';
  const config: FloorConfig = {
    roots: [root],
    publicKey: controller.publicKey,
    transport: 'http',
    identities,
    hostUuid,
    stateDir,
  };
  writeFileSync(join(dir, 'floor.json'), JSON.stringify(config));
  const child = spawn(process.execPath, [SERVER, join(dir, 'floor.json')], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => stopChild(child));
  const lines = createInterface({ input: child.stdout });
  const [first] = (await once(lines, 'line')) as [string];
  const { port } = JSON.parse(first) as { port: number };
  const client = transportKit('http').createClient(1, identities);
  t.after(() => {
    client.close();
  });
  const url = `http://127.0.0.1:${port}/`;
  const envelope = (ops: ApplyOp[], host = hostUuid): Buffer =>
    Buffer.from(
      JSON.stringify(
        signEnvelope(COMMAND_CONTEXT, buildCommand('files.apply', host, { ops }, { now: Date.now() }), controller),
      ),
    );
  const trusted = trustedKeyFromBase64(server.publicKey);
  /** Sends `body`; the statuses of its ops, from an answer that verifies under the server's key. */
  const apply = async (body: Buffer): Promise<string[]> => {
    const parsed = parseEnvelope((await client.post(url, body)).toString('utf8'));
    assert.ok(parsed.ok, 'the answer is an envelope');
    const answer = verifyEnvelope(parsed.value, ANSWER_CONTEXT, (id) =>
      id === trusted.keyId ? trusted.key : undefined,
    );
    assert.ok(answer.ok, 'the answer verifies under the server key');
    const { results } = JSON.parse(answer.value.toString('utf8')) as { results: { status: string }[] };
    return results.map((r) => r.status);
  };
  return { root, stateDir, envelope, apply, post: (body: Buffer) => client.post(url, body) };
}

test('the floor writes and deletes, signs its answers, journals each request and refuses a replay', async (t) => {
  const floor = await startFloor(t);
  const path = join(floor.root, 'unit-1', 'tpm2-00.permall');
  const write = floor.envelope([writeOp('TpmState', path, Buffer.from('state'))]);
  assert.deepEqual(await floor.apply(write), ['written']);
  assert.equal(readFileSync(path, 'utf8'), 'state');
  await assert.rejects(floor.post(write), /400 Error: replayed/);
  await assert.rejects(
    floor.post(floor.envelope([deleteOp('TpmState', path)], '00000000-0000-4000-8000-000000000000')),
    /400 Error: wrong command/,
  );
  await assert.rejects(floor.post(floor.envelope([deleteOp('TpmState', '/etc/passwd')])), /400 Error: bad op/);
  assert.deepEqual(await floor.apply(floor.envelope([deleteOp('TpmState', path)])), ['deleted']);
  assert.equal(existsSync(join(floor.root, 'unit-1')), false, "the state's directory is pruned");
  const lines = readFileSync(join(floor.stateDir, 'replay.jsonl'), 'utf8').trim().split('\n');
  const kinds = lines.map((line) => Object.keys(JSON.parse(line) as object).join());
  assert.deepEqual(kinds, ['r,h,f', 'r,a', 'r,h,f', 'r,a'], 'a record, then an answer, for each request applied');
});

test("the floor refuses to write into or delete a unit one of whose files is locked, and goes on once it isn't", async (t) => {
  if (!flockAvailable()) {
    t.skip('util-linux flock(1) is not installed');
    return;
  }
  const floor = await startFloor(t);
  const unit = join(floor.root, 'unit-2');
  const path = join(unit, 'tpm2-00.permall');
  assert.deepEqual(await floor.apply(floor.envelope([writeOp('TpmState', path, Buffer.from('old'))])), ['written']);
  mkdirSync(join(unit, 'tpm2'));
  writeFileSync(join(unit, 'tpm2', 'lock'), '');
  const held = await holdFlock(t, join(unit, 'tpm2', 'lock'));
  assert.deepEqual(await floor.apply(floor.envelope([deleteOp('TpmState', path)])), ['busy']);
  assert.deepEqual(await floor.apply(floor.envelope([writeOp('TpmState', path, Buffer.from('new'))])), ['busy']);
  assert.equal(readFileSync(path, 'utf8'), 'old', 'the running state is untouched');
  await held.release();
  assert.deepEqual(await floor.apply(floor.envelope([deleteOp('TpmState', path)])), ['deleted']);
  assert.equal(existsSync(path), false);
});

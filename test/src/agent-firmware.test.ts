// Real UEFI variable stores through a real agent: OVMF's 540 KiB and AAVMF's 64 MiB, gzipped on the wire both
// ways, back byte for byte; and one a real QEMU runs on, which the agent must leave alone.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { deleteOp, writeOp } from '@hostfiles/shared';
import { removeSetup, startAgent, type AgentHandle } from './support/agent-process.js';
import { agentInfo, outcomes, send, signedBody, commandPayload, post, type AgentClient } from './support/commands.js';
import { qemuUnavailable, startQemu } from './support/qemu.js';
import { skipWithout } from './support/real-tools.js';

const STORES = [
  { name: 'OVMF_VARS_4M.ms.fd', path: '/usr/share/OVMF/OVMF_VARS_4M.ms.fd' },
  { name: 'AAVMF_VARS.fd', path: '/usr/share/AAVMF/AAVMF_VARS.fd' },
] as const;
/** The store libvirt copies for a VM without secure boot, beside the code QEMU runs (support/qemu.ts). */
const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

let agent: AgentHandle;
let client: AgentClient;

before(async () => {
  agent = await startAgent();
  client = {
    url: agent.url,
    hostUuid: agent.setup.hostUuid,
    key: agent.setup.controllerKey,
    agentPublicKey: (await agentInfo(agent.url)).publicKey,
  };
});
after(async () => {
  assert.equal(await agent.stop(), 0);
  removeSetup(agent.setup);
});

const sha = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

for (const store of STORES) {
  test(`${store.name}: written gzipped, read back gzipped, byte for byte`, async (t) => {
    const missing = existsSync(store.path) ? undefined : `${store.path} is not installed (ovmf, qemu-efi-aarch64)`;
    if (skipWithout(t, missing)) return;
    const bytes = readFileSync(store.path);
    const target = join(agent.setup.roots.NvRam, `vm-${store.name.split('_')[0] ?? 'x'}_VARS.fd`);
    const op = writeOp('NvRam', target, bytes, { compress: true, expect: 'absent' });
    assert.equal(op.encoding, 'gzip');
    const body = signedBody(client.key, commandPayload('files.apply', client.hostUuid, { ops: [op] }));
    t.diagnostic(`${bytes.length} bytes travel as a ${body.length}-byte command`);
    assert.ok(body.length < 4 * 1024 * 1024, 'within the default body limit');
    const written = await post(client.url, '/v1/files/apply', body);
    assert.equal(written.status, 200, written.text);
    assert.ok(readFileSync(target).equals(bytes), 'on disk byte for byte');

    const read = await send(client, 'files.read', { files: [{ type: 'NvRam', path: target }] });
    const [file] = read.results;
    assert.ok(file?.status === 'read' && file.kind === 'file');
    assert.equal(file.encoding, 'gzip');
    assert.equal(file.size, bytes.length);
    assert.equal(file.sha256, sha(bytes));
    assert.ok(gunzipSync(Buffer.from(file.content, 'base64')).equals(bytes), 'read back byte for byte');
    const listed = await send(client, 'files.list', { types: ['NvRam'] });
    assert.equal(listed.results.find((u) => u.path === target)?.sha256, sha(bytes));
  });
}

test('a running QEMU holds its NVRAM: written over and deleted are refused (busy) until it exits', async (t) => {
  const missing = qemuUnavailable() ?? (existsSync(OVMF_VARS) ? undefined : `${OVMF_VARS} is not installed (ovmf)`);
  if (skipWithout(t, missing)) return;
  const vars = join(agent.setup.roots.NvRam, 'running_VARS.fd');
  const bytes = readFileSync(OVMF_VARS);
  const written = await send(client, 'files.apply', { ops: [writeOp('NvRam', vars, bytes, { compress: true })] });
  assert.equal(written.results[0]?.status, 'written');
  const qemu = await startQemu(vars);
  t.after(() => qemu.stop());
  const inode = statSync(vars).ino;
  assert.ok(readFileSync('/proc/locks', 'utf8').includes(`:${inode} `), 'QEMU locks its NVRAM (OFD)');

  const refused = await send(client, 'files.apply', {
    ops: [writeOp('NvRam', vars, Buffer.from('other variables')), deleteOp('NvRam', vars)],
  });
  assert.deepEqual(outcomes(refused), [
    ['write', 'failed', 'busy'],
    ['delete', 'failed', 'busy'],
  ]);
  assert.equal(statSync(vars).ino, inode, 'the very file QEMU has open');
  assert.ok(readFileSync(vars).equals(bytes), 'byte for byte (QEMU paused before its first instruction wrote nothing)');
  const busy = await send(client, 'files.busy', { files: [{ type: 'NvRam', path: vars }] });
  assert.deepEqual(busy.results, [{ type: 'NvRam', path: vars, status: 'present', kind: 'file', busy: true }]);

  await qemu.stop();
  const removed = await send(client, 'files.apply', { ops: [deleteOp('NvRam', vars)] });
  assert.equal(removed.results[0]?.status, 'deleted', 'free once QEMU has exited');
  assert.equal(existsSync(vars), false);
});

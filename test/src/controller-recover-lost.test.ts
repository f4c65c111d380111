// `vm recover` with no --host-lost, from a host that really left the network. In a network namespace of the test's
// own (loopback only), the old host's agent listens on an address of the namespace's loopback that the test then
// takes away: a connection to it fails at once with ENETUNREACH (no route), as the kernel answers for a host gone
// from the network. The controller runs in the namespace too. Needs root and ip(8), as CI has.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { removeSetup, setupAgent, startAgent, type AgentHandle } from './support/agent-process.js';
import { hostfiles, initWorkspace } from './support/cli.js';
import { assertRecovered, type RecoverReport } from './support/recover.js';

const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((path) => existsSync(path));
/** The lost host's address: on the namespace's loopback until the test takes it away. */
const LOST = '10.77.0.1';

function ip(...args: string[]): string {
  const run = spawnSync(IP ?? 'ip', args, { encoding: 'utf8' });
  assert.equal(run.status, 0, `ip ${args.join(' ')}: ${run.stderr}`);
  return run.stdout;
}

test('vm recover from a host gone from the network (no route) needs no --host-lost; its copy goes to the outbox', async (t) => {
  const ns = `hf-lost-${randomBytes(4).toString('hex')}`;
  // Root without CAP_SYS_ADMIN (an unprivileged container) can't make one either: skipped, saying why.
  const made = IP === undefined ? undefined : spawnSync(IP, ['netns', 'add', ns], { encoding: 'utf8' });
  if (IP === undefined || made?.status !== 0) {
    t.skip(`SKIP: no network namespace could be made (needs root and ip(8)): ${made?.stderr.trim() ?? 'no ip(8)'}`);
    return;
  }
  t.after(() => {
    spawnSync(IP, ['netns', 'del', ns]);
  });
  const inNs = [IP, 'netns', 'exec', ns];
  ip('netns', 'exec', ns, IP, 'link', 'set', 'lo', 'up');
  ip('netns', 'exec', ns, IP, 'address', 'add', `${LOST}/32`, 'dev', 'lo');

  const ws = await initWorkspace(t, 'hostfiles-lost-');
  const cli = (...args: string[]) => hostfiles(['--db', ws.db, ...args], {}, inNs);
  const ok = async (...args: string[]): Promise<string> => {
    const run = await cli(...args);
    assert.equal(run.status, 0, `${args.join(' ')}: ${run.stderr}`);
    return run.stdout;
  };
  // Each agent stopped and its directory removed after the test, whatever fails after it was made.
  const started = async (listen: Record<string, unknown>): Promise<AgentHandle> => {
    const setup = setupAgent({ controllerKey: ws.key, config: { listen } });
    const held: { agent?: AgentHandle } = {};
    t.after(async () => {
      await held.agent?.stop();
      removeSetup(setup);
    });
    held.agent = await startAgent(setup, { prefix: inNs });
    return held.agent;
  };
  const old = await started({ host: LOST, port: 0 });
  const fresh = await started({ host: '127.0.0.1', port: 0 });
  assert.equal(old.url, `https://${LOST}:${String(old.port)}`);
  await ok('host', 'add', 'h0', old.url, '--expect-key', old.publicKey);
  await ok('host', 'add', 'h1', fresh.url, '--expect-key', fresh.publicKey);
  await ok('vm', 'add', 'a', '--host', 'h0', '--uefi', '--secure-boot');
  const vars = join(old.setup.roots.NvRam, 'a_VARS.fd');
  const content = randomBytes(512);
  writeFileSync(join(ws.dir, 'vars'), content);
  await ok('file', 'write', 'a', '--type', 'NvRam', '--path', vars, '--from', join(ws.dir, 'vars'));

  // While h0 answers, it is not lost.
  const answering = await cli('vm', 'recover', 'a', '--to', 'h1');
  assert.equal(answering.status, 1);
  assert.match(answering.stderr, /host_in_use: VM a's host h0 answers: recover is for a lost host/);

  // h0 leaves the network: its address is gone, its agent (and whatever ran there) untouched.
  ip('netns', 'exec', ns, IP, 'address', 'del', `${LOST}/32`, 'dev', 'lo');
  assert.match(
    await ok('host', 'check'),
    /^h0 +Disconnected +Connected +https:\/\/10\.77\.0\.1:\d+ +unreachable: connect ENETUNREACH /m,
    'no route to h0',
  );
  const report = JSON.parse(await ok('vm', 'recover', 'a', '--to', 'h1', '--json')) as RecoverReport;
  assertRecovered(report, join(fresh.setup.roots.NvRam, 'a_VARS.fd'), vars, content);
});

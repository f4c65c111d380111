// A fleet's dead ends, as an operator meets them with the real binary, a real database file and real agents:
// an agent whose key was regenerated (host repin), a host gone for good (host drain / remove), and destructive
// commands previewed (--dry-run).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { createSqliteStore } from '@hostfiles/controller';
import { signingKeyFromPem, type SigningKey } from '@hostfiles/shared';
import { removeSetup, setupAgent, startAgent, type AgentHandle } from './support/agent-process.js';
import { hostfiles, type Run } from './support/cli.js';

interface Bench {
  readonly dir: string;
  readonly db: string;
  readonly key: SigningKey;
  cli(...args: string[]): Promise<Run>;
  /** starts an agent trusting this controller's key, stopped and removed after the test */
  agent(options?: { readonly config?: Record<string, unknown>; readonly dir?: string }): Promise<AgentHandle>;
}

async function bench(t: TestContext): Promise<Bench> {
  const dir = mkdtempSync(join(tmpdir(), 'hostfiles-lifecycle-'));
  const db = join(dir, 'hostfiles.db');
  assert.equal((await hostfiles(['init', '--db', db])).status, 0);
  const key = signingKeyFromPem(readFileSync(join(dir, 'hostfiles.key'), 'utf8'));
  const agents: AgentHandle[] = [];
  t.after(async () => {
    await Promise.all(agents.map((agent) => agent.stop()));
    for (const agent of agents) removeSetup(agent.setup);
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    dir,
    db,
    key,
    cli: (...args) => hostfiles(['--db', db, ...args]),
    async agent(options = {}) {
      const agent = await startAgent(setupAgent({ controllerKey: key, ...options }));
      agents.push(agent);
      return agent;
    },
  };
}

function ok(run: Run): string {
  assert.equal(run.status, 0, `${run.stdout}${run.stderr}`);
  return run.stdout;
}
const json = (run: Run): unknown => JSON.parse(ok(run));

function fails(run: Run, status: number, pattern: RegExp): void {
  assert.equal(run.status, status, `${run.stdout}${run.stderr}`);
  assert.match(run.stderr, pattern);
  assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
}

/** Every inventory row the controller keeps, read from the database file itself. */
async function snapshot(db: string): Promise<unknown> {
  const store = await createSqliteStore(db);
  try {
    const hosts = await store.listHosts();
    const vms = await store.listVms();
    return {
      hosts,
      vms,
      tpms: await store.listTpmsByVms(vms.map((vm) => vm.uuid)),
      bindings: await store.listKeyBindings(),
      files: await store.listFilesByVms(vms.map((vm) => vm.uuid)),
      backups: await store.listBackupsByVms(vms.map((vm) => vm.uuid)),
      pending: await store.listPendingDeletions(),
      owned: await Promise.all(hosts.map((h) => store.listOwnedPaths(h.uuid))),
      operations: await store.listOperations({ limit: 1000 }),
    };
  } finally {
    await store.close();
  }
}

/** The signed commands of a kind an agent has answered so far, from its own log. */
const requests = (agent: AgentHandle, kind: string): number =>
  agent.lines.filter((line) => {
    const parsed = JSON.parse(line) as { event?: string; kind?: string };
    return parsed.event === 'request' && parsed.kind === kind;
  }).length;

/** The agent restarted at its address with a new key (its key file lost), as after a reinstall keeping its config. */
async function regenerate(b: Bench, agent: AgentHandle): Promise<AgentHandle> {
  await agent.stop();
  rmSync(agent.setup.keyFile);
  return b.agent({
    dir: agent.setup.dir,
    config: { hostUuid: agent.setup.hostUuid, listen: { host: '127.0.0.1', port: agent.port } },
  });
}

test('vm recover from a host where another key answers (a reinstall) is refused unless --host-lost', async (t) => {
  const b = await bench(t);
  const [first, second] = [await b.agent(), await b.agent()];
  ok(await b.cli('host', 'add', 'h0', first.url, '--expect-key', first.publicKey));
  ok(await b.cli('host', 'add', 'h1', second.url, '--expect-key', second.publicKey));
  const uuid = randomUUID();
  ok(await b.cli('vm', 'add', 'a', '--host', 'h0', '--uuid', uuid));
  // A vTPM as libvirt lays it out: <TpmState root>/<uuid>/tpm2/…, recovered to the same layout on h1.
  const local = join(b.dir, 'state');
  mkdirSync(join(local, 'tpm2'), { recursive: true });
  writeFileSync(join(local, 'tpm2', 'tpm2-00.permall'), 'tpm state');
  const path = join(first.setup.roots.TpmState, uuid);
  ok(await b.cli('file', 'write', 'a', '--type', 'TpmState', '--path', path, '--from', local));
  // Someone answers at h0's address with another key: not nothing, so not lost without the operator saying so.
  await regenerate(b, first);
  fails(
    await b.cli('vm', 'recover', 'a', '--to', 'h1'),
    1,
    /host_in_use: VM a's host h0 answers with another key than the one pinned: recover is for a lost host/,
  );
  const moved = join(second.setup.roots.TpmState, uuid, 'tpm2', 'tpm2-00.permall');
  assert.equal(existsSync(moved), false, 'nothing written on h1');
  ok(await b.cli('vm', 'recover', 'a', '--to', 'h1', '--host-lost'));
  assert.equal(readFileSync(moved, 'utf8'), 'tpm state', 'given up: recovered onto h1');
});

test('host repin: a regenerated agent key is refused everywhere until re-pinned; a wrong key is refused', async (t) => {
  const b = await bench(t);
  const first = await b.agent();
  ok(await b.cli('host', 'add', 'h0', first.url, '--expect-key', first.publicKey));
  ok(await b.cli('vm', 'add', 'a', '--host', 'h0'));
  const local = join(b.dir, 'state');
  writeFileSync(local, 'tpm state');
  const path = join(first.setup.roots.TpmState, 'a', 'tpm2-00.permall');

  const agent = await regenerate(b, first);
  assert.notEqual(agent.publicKey, first.publicKey);
  fails(
    await b.cli('host', 'check'),
    1,
    /refused h0: host_key_changed: host h0 presents another TLS certificate than the one pinned .*`hostfiles host repin h0 --expect-key KEY` pins the new one/,
  );
  fails(await b.cli('file', 'write', 'a', '--type', 'TpmState', '--path', path, '--from', local), 1, /h0/);
  assert.equal(existsSync(path), false, 'nothing reaches an agent that fails the pin');

  const before = await snapshot(b.db);
  fails(
    await b.cli('host', 'repin', 'h0', '--expect-key', first.publicKey),
    1,
    /host_key_mismatch: the agent at https:\/\/127\.0\.0\.1:\d+ presents a TLS certificate for key sha256:/,
  );
  assert.deepEqual(await snapshot(b.db), before, 'a refused repin stores nothing');
  fails(await b.cli('host', 'repin', 'h0'), 2, /host repin needs --expect-key KEY/);

  const report = json(await b.cli('host', 'repin', 'h0', '--expect-key', agent.publicKey, '--json')) as {
    hostName: string;
    pinned: string;
    previous: string;
    operationId: string;
    tls: boolean;
  };
  assert.equal(report.hostName, 'h0');
  assert.notEqual(report.pinned, report.previous);
  assert.equal(report.tls, true);
  const hosts = json(await b.cli('host', 'list', '--json')) as { publicKey: string; state: string; url: string }[];
  assert.deepEqual(
    hosts.map((h) => [h.publicKey, h.state, h.url]),
    [[agent.publicKey, 'Connected', first.url]],
  );
  ok(await b.cli('host', 'check'));
  ok(await b.cli('file', 'write', 'a', '--type', 'TpmState', '--path', path, '--from', local));
  assert.equal(readFileSync(path, 'utf8'), 'tpm state', 'calls work again');
  const ops = json(await b.cli('ops', 'list', '--kind', 'host.repin', '--json')) as {
    id: string;
    kind: string;
    state: string;
  }[];
  assert.deepEqual(
    ops.map((o) => [o.id, o.state]),
    [[report.operationId, 'done']],
  );
});

test('host drain lists what names a gone host; host remove refuses until each kind is settled, then reports it all', async (t) => {
  const b = await bench(t);
  const agent = await b.agent();
  ok(await b.cli('host', 'add', 'h0', agent.url, '--expect-key', agent.publicKey));
  for (const vm of ['a', 'c']) {
    ok(await b.cli('vm', 'add', vm, '--host', 'h0'));
    ok(await b.cli('tpm', 'add', vm));
    const local = join(b.dir, vm);
    writeFileSync(local, `tpm of ${vm}`);
    const path = join(agent.setup.roots.TpmState, vm, 'tpm2-00.permall');
    if (vm === 'c') ok(await b.cli('file', 'write', vm, '--type', 'TpmState', '--path', path, '--from', local));
    else {
      // a's state libvirt made, adopted without --backup: the controller holds no copy of it (a write would be one).
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, `tpm of ${vm}`);
      ok(await b.cli('adopt', vm, '--tpm-path', path));
    }
  }
  // While its agent answers, the host is not gone: forgetting what names it is refused, whatever the options.
  const live = await snapshot(b.db);
  fails(
    await b.cli('host', 'remove', 'h0', '--forget-records', '--forget-pending'),
    1,
    /host_in_use: host h0 answered its last health check \(Connected\)/,
  );
  assert.deepEqual(await snapshot(b.db), live, 'nothing forgotten on a host that answers');
  // The host dies for good: c's TPM removal leaves its deletion pending there, its binding detaching.
  await agent.stop();
  ok(await b.cli('tpm', 'remove', 'c'));
  const cPath = join(agent.setup.roots.TpmState, 'c', 'tpm2-00.permall');

  type Holdings = {
    vms: { vmName: string }[];
    files: { vmName: string; path: string; backup: boolean }[];
    pending: { path: string; tpmUuid: string | null }[];
    ownedPaths: string[];
    needs: string[];
  };
  const before = await snapshot(b.db);
  const drain = json(await b.cli('host', 'drain', 'h0', '--json')) as Holdings;
  assert.deepEqual(
    drain.vms.map((v) => v.vmName),
    ['a', 'c'],
  );
  assert.deepEqual(
    drain.files.map((f) => [f.vmName, f.path, f.backup]),
    [['a', join(agent.setup.roots.TpmState, 'a', 'tpm2-00.permall'), false]],
  );
  assert.deepEqual(
    drain.pending.map((p) => p.path),
    [cPath],
  );
  assert.deepEqual(drain.needs, ['forget-records', 'forget-pending']);
  const text = ok(await b.cli('host', 'drain', 'h0'));
  assert.match(text, /NO BACKUP: lost with the host/, 'a state of which the controller holds no copy is said so');
  assert.match(text, /host remove h0 --forget-records --forget-pending/);
  assert.deepEqual(await snapshot(b.db), before, 'drain changes nothing');

  fails(await b.cli('host', 'remove', 'h0'), 1, /host_in_use: host h0 is still named by 2 VM\(s\) living on it/);
  fails(await b.cli('host', 'remove', 'h0', '--forget-records'), 1, /--forget-pending settle/);
  fails(await b.cli('host', 'remove', 'h0', '--forget-pending'), 1, /--forget-records settle/);
  assert.deepEqual(await snapshot(b.db), before, 'a refused removal changes nothing');

  const removal = json(
    await b.cli('host', 'remove', 'h0', '--forget-records', '--forget-pending', '--json'),
  ) as Holdings & { operationId: string; bindings: { binding: string }[] };
  assert.deepEqual(
    { ...removal, operationId: '', bindings: [] },
    { ...drain, operationId: '', bindings: [] },
    'every row settled is the one drain listed',
  );
  assert.deepEqual(
    removal.bindings.map((x) => x.binding),
    ['detached'],
    "c's binding waited only on the forgotten deletion",
  );
  assert.deepEqual(json(await b.cli('host', 'list', '--json')), []);
  const vms = json(await b.cli('vm', 'list', '--json')) as { name: string; hostUuid: string | null }[];
  assert.deepEqual(
    vms.map((vm) => [vm.name, vm.hostUuid]),
    [
      ['a', null],
      ['c', null],
    ],
  );
  assert.deepEqual(json(await b.cli('pending', 'list', '--json')), []);
  assert.deepEqual(json(await b.cli('binding', 'list', '--state', 'detaching', '--json')), []);
  const op = json(await b.cli('ops', 'show', removal.operationId, '--json')) as {
    kind: string;
    state: string;
    report: { pending: unknown[] };
  };
  assert.deepEqual([op.kind, op.state, op.report.pending.length], ['host.remove', 'done', 1]);
});

test('--dry-run on vm destroy, tpm remove and reconcile --apply: the report, exit 0, nothing changed or sent', async (t) => {
  const b = await bench(t);
  const agent = await b.agent();
  ok(await b.cli('host', 'add', 'h0', agent.url, '--expect-key', agent.publicKey));
  ok(await b.cli('vm', 'add', 'a', '--host', 'h0', '--uefi'));
  ok(await b.cli('tpm', 'add', 'a'));
  const tpmPath = join(agent.setup.roots.TpmState, 'a', 'tpm2-00.permall');
  const varsPath = join(agent.setup.roots.NvRam, 'a_VARS.fd');
  for (const [type, path] of [
    ['TpmState', tpmPath],
    ['NvRam', varsPath],
  ] as const) {
    const local = join(b.dir, type);
    writeFileSync(local, `${type} of a`);
    ok(await b.cli('file', 'write', 'a', '--type', type, '--path', path, '--from', local));
  }
  const unknown = join(agent.setup.roots.NvRam, 'stray_VARS.fd');
  writeFileSync(unknown, 'not ours');

  const before = await snapshot(b.db);
  const applied = requests(agent, 'files.apply');
  type Plan = { dryRun: boolean; commands: number; hosts: { files: { path: string; status: string }[] }[] };
  const destroy = json(await b.cli('vm', 'destroy', 'a', '--dry-run', '--json')) as Plan & { vmName: string };
  assert.equal(destroy.dryRun, true);
  assert.equal(destroy.commands, 1);
  assert.deepEqual(
    destroy.hosts.flatMap((h) => h.files.map((f) => [f.path, f.status])).sort(),
    [
      [tpmPath, 'planned'],
      [varsPath, 'planned'],
    ].sort(),
  );
  assert.match(ok(await b.cli('vm', 'destroy', 'a', '--dry-run')), /would send 1 command[\s\S]*nothing was changed/);
  const removal = json(await b.cli('tpm', 'remove', 'a', '--dry-run', '--json')) as Plan & {
    vms: { vmName: string; nvram: string }[];
  };
  assert.equal(removal.dryRun, true);
  assert.deepEqual(
    removal.vms.map((vm) => [vm.vmName, vm.nvram]),
    [['a', 'deleted']],
  );
  assert.equal(removal.hosts.flatMap((h) => h.files).length, 2);
  // Read by a person: what would be, said so.
  const said = await b.cli('tpm', 'remove', 'a', '--dry-run');
  assert.match(said.stdout, /^VM +TPM +NVRAM WOULD BE +KEY BINDING WOULD BE\na +\S+ +deleted +detached\n/);
  const reconcile = json(await b.cli('reconcile', 'h0', '--apply', '--include-unknown', '--dry-run', '--json')) as {
    dryRun: boolean;
    scheduled: string[];
    unknown: { path: string }[];
  };
  assert.equal(reconcile.dryRun, true);
  assert.deepEqual(reconcile.scheduled, [unknown]);
  fails(await b.cli('reconcile', 'h0', '--dry-run'), 2, /--dry-run goes with --apply/);
  // The hint that unknown state stays is for unknown state that stays, not for what this run would schedule.
  const hint = /unknown state is never deleted unless --apply --include-unknown/;
  const including = ok(await b.cli('reconcile', 'h0', '--apply', '--include-unknown', '--dry-run'));
  assert.match(including, /dry run: 1 state would be scheduled for deletion/);
  assert.doesNotMatch(including, hint);

  assert.deepEqual(await snapshot(b.db), before, 'no row changed, no operation journaled');
  assert.equal(requests(agent, 'files.apply'), applied, 'no deletion reached the agent');
  assert.equal(readFileSync(tpmPath, 'utf8'), 'TpmState of a');
  assert.equal(readFileSync(varsPath, 'utf8'), 'NvRam of a');
  assert.equal(readFileSync(unknown, 'utf8'), 'not ours');

  assert.match(ok(await b.cli('reconcile', 'h0')), hint, 'said where unknown state stays');

  // The same command without --dry-run does what the plan said, each file in the table a removal prints (its
  // outcome and, for one left pending, why).
  const destroyed = ok(await b.cli('vm', 'destroy', 'a'));
  assert.match(destroyed, /\nHOST +OUTCOME +TYPE +PATH(?: +WHY)?\nh0 +deleted +(TpmState|NvRam) /);
  assert.equal(existsSync(tpmPath) || existsSync(varsPath), false);
});

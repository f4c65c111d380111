// Several `hostfiles serve` processes on one PostgreSQL database and one fleet of real agents: removals through the
// APIs of different controllers at once, a host down and back, a controller SIGKILLed mid-removal. Every file of a
// removed TPM goes, the outbox empties, each removal runs to its end once, and secure-boot NVRAM is never touched.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { removeSetup, setupAgent, startAgent, type AgentHandle, type AgentSetup } from './support/agent-process.js';
import { hostfiles } from './support/cli.js';
import { pgSchema, POSTGRES_SKIP, within } from './support/postgres.js';
import { apiCall, startServe, until, type Served } from './support/serve.js';

const TOKEN = randomBytes(24).toString('base64url');
const b64 = (text: string): string => Buffer.from(text).toString('base64');

/** A port free now, for an agent that must come back where it was. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => {
    server.close(() => {
      resolve();
    });
  });
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

interface Fleet {
  readonly db: string;
  readonly dir: string;
  readonly tokenFile: string;
  readonly setups: AgentSetup[];
  readonly agents: AgentHandle[];
  /** PostgreSQL only */
  readonly query: (sql: string, params?: unknown[]) => Promise<unknown[]>;
  serve(extra?: readonly string[]): Promise<Served>;
}

/** A database (a PostgreSQL schema, or a SQLite file), a controller key, `count` agents on fixed ports, the hosts. */
async function fleet(t: TestContext, count: number, engine: 'postgres' | 'sqlite' = 'postgres'): Promise<Fleet> {
  const dir = mkdtempSync(join(tmpdir(), 'hostfiles-multi-'));
  let db = join(dir, 'hostfiles.db');
  let query: Fleet['query'] = () => Promise.reject(new Error('query: PostgreSQL only'));
  let drop = (): Promise<void> => Promise.resolve();
  if (engine === 'postgres') {
    const schema = await pgSchema();
    db = schema.db;
    query = (sql: string, params?: unknown[]): Promise<unknown[]> => schema.query(sql, params);
    drop = () => schema.drop();
  }
  const keyFile = join(dir, 'hostfiles.key');
  const init = await hostfiles(['init', '--db', db, '--key', keyFile]);
  assert.equal(init.status, 0, init.stderr);
  const { signingKeyFromPem } = await import('@hostfiles/shared');
  const key = signingKeyFromPem(readFileSync(keyFile, 'utf8'));
  const setups: AgentSetup[] = [];
  for (let i = 0; i < count; i += 1) {
    setups.push(setupAgent({ controllerKey: key, config: { listen: { host: '127.0.0.1', port: await freePort() } } }));
  }
  const agents = await Promise.all(setups.map((setup) => startAgent(setup)));
  const tokenFile = join(dir, 'api.token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  const served: Served[] = [];
  // One cleanup, in order and bounded: the controllers go first (they hold the schema), then the agents, then it.
  t.after(async () => {
    for (const s of served) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    await within(10_000, Promise.all(served.map((s) => s.exited)));
    // A test that failed while an agent was stopped (SIGSTOP) must not leave it unable to take its SIGTERM.
    for (const agent of agents) agent.process.kill('SIGCONT');
    await within(10_000, Promise.all(agents.map((agent) => agent.stop())));
    for (const agent of agents) if (agent.process.exitCode === null) agent.process.kill('SIGKILL');
    for (const setup of setups) removeSetup(setup);
    rmSync(dir, { recursive: true, force: true });
    await drop();
  });
  const serve = async (extra: readonly string[] = []): Promise<Served> => {
    const s = await startServe([
      '--db',
      db,
      '--key',
      keyFile,
      '--token-file',
      tokenFile,
      '--listen',
      '127.0.0.1:0',
      '--health-interval-ms',
      '100',
      ...extra,
    ]);
    served.push(s);
    return s;
  };
  const first = await serve();
  for (const [i, agent] of agents.entries()) {
    const added = await call(first, 'POST', '/v1/hosts', { name: `h${i}`, url: agent.url, expectKey: agent.publicKey });
    assert.equal(added.status, 201, JSON.stringify(added.body));
  }
  first.child.kill('SIGTERM');
  assert.equal((await first.exited).code, 0);
  return { db, dir, tokenFile, setups, agents, query, serve };
}

const call = (server: Served, method: string, path: string, body?: unknown) =>
  apiCall(server, TOKEN, method, path, body);

interface Seeded {
  readonly name: string;
  readonly host: number;
  readonly tpmPath: string;
  /** secure boot: its NVRAM must survive the removal of its TPM */
  readonly nvramPath: string | null;
}

/** VMs with a TPM and its state on their host's disk, written through `server`; every third with secure boot. */
async function seed(server: Served, f: Fleet, prefix: string, count: number): Promise<Seeded[]> {
  const seeded: Seeded[] = [];
  for (let i = 0; i < count; i += 1) {
    const host = i % f.agents.length;
    const name = `${prefix}${i}`;
    const secureBoot = i % 3 === 0;
    const setup = f.setups[host];
    assert.ok(setup);
    assert.equal(
      (await call(server, 'POST', '/v1/vms', { name, host: `h${host}`, bootMode: 'UEFI', secureBoot })).status,
      201,
    );
    assert.equal((await call(server, 'POST', `/v1/vms/${name}/tpm`, { keyProvider: 'kms' })).status, 201);
    const tpmPath = join(setup.roots.TpmState, name, 'tpm2-00.permall');
    const files: [string, string][] = [['TpmState', tpmPath]];
    const nvramPath = secureBoot ? join(setup.roots.NvRam, `${name}_VARS.fd`) : null;
    if (nvramPath !== null) files.push(['NvRam', nvramPath]);
    for (const [type, path] of files) {
      const written = await call(server, 'POST', '/v1/files', {
        vm: name,
        type,
        path,
        content: b64(`${type} of ${name}`),
      });
      assert.equal(written.status, 201, JSON.stringify(written.body));
    }
    seeded.push({ name, host, tpmPath, nvramPath });
  }
  return seeded;
}

/** The database as the fleet must end: no TPM, binding, pending deletion or running operation of these VMs. */
async function assertSettled(f: Fleet, vms: readonly Seeded[]): Promise<void> {
  for (const vm of vms) {
    assert.equal(existsSync(vm.tpmPath), false, `${vm.name}: TPM state gone`);
    if (vm.nvramPath !== null) {
      assert.equal(readFileSync(vm.nvramPath, 'utf8'), `NvRam of ${vm.name}`, `${vm.name}: secure-boot NVRAM kept`);
    }
  }
  assert.deepEqual(await f.query('SELECT path FROM $schema.pending_deletions'), [], 'the outbox is empty');
  assert.deepEqual(await f.query('SELECT tpm_uuid FROM $schema.key_bindings'), [], 'every binding detached');
  assert.deepEqual(await f.query('SELECT uuid FROM $schema.tpms'), []);
  assert.deepEqual(
    await f.query("SELECT id, kind FROM $schema.operations WHERE state <> 'done'"),
    [],
    'every operation ran to its end',
  );
}

/** The signed commands an agent applied (not answered again from its journal), from its log since line `from`. */
const appliedSince = (agent: AgentHandle, from: number): number =>
  agent.lines.slice(from).filter((text) => {
    const line = JSON.parse(text) as { event?: string; kind?: string; retry?: boolean };
    return line.event === 'request' && line.kind === 'files.apply' && line.retry !== true;
  }).length;

interface Removal {
  readonly pending: readonly { path: string }[];
}

describe('several controllers on one PostgreSQL database', { skip: POSTGRES_SKIP ?? false }, () => {
  it('three serve processes: removals through each API at once, a host down and back', async (t) => {
    const f = await fleet(t, 3);
    const servers = [await f.serve(), await f.serve(), await f.serve()];
    const vms = await seed(servers[0] as Served, f, 'vm', 18);
    const [up0, up1, down] = f.agents as [AgentHandle, AgentHandle, AgentHandle];
    const marks = [up0.lines.length, up1.lines.length];

    // h2 goes down: its deletions wait in the outbox, whichever controller made them.
    await down.stop();
    const replies = await Promise.all(
      servers.map((server, i) =>
        call(server, 'POST', '/v1/tpms/remove', {
          // each controller removes VMs of every host
          vms: vms.filter((_, j) => Math.floor(j / 3) % 3 === i).map((vm) => vm.name),
        }),
      ),
    );
    for (const reply of replies) assert.equal(reply.status, 200, JSON.stringify(reply.body));
    const pending = replies.flatMap((reply) => (reply.body as Removal).pending.map((p) => p.path)).sort();
    assert.deepEqual(
      pending,
      vms
        .filter((vm) => vm.host === 2)
        .map((vm) => vm.tpmPath)
        .sort(),
      "h2's states, and only those, wait in the outbox",
    );
    // Each removal reached each host that was up once: one command each, none sent twice by two controllers.
    assert.deepEqual([appliedSince(up0, marks[0] ?? 0), appliedSince(up1, marks[1] ?? 0)], [3, 3]);

    // h2 comes back where it was: the controller whose share it is drains its deletions.
    const back = await startAgent(f.setups[2]);
    f.agents[2] = back;
    await until('the outbox to drain', async () =>
      (await f.query('SELECT 1 FROM $schema.pending_deletions')).length === 0 ? true : undefined,
    );
    await assertSettled(f, vms);
    assert.ok(appliedSince(back, 0) >= 1, 'h2 was sent its deletions');
    assert.ok(appliedSince(back, 0) <= 3, 'at most one command per removal, never a row sent by two controllers');
    const ops = (await f.query(
      'SELECT kind, count(*)::int AS n FROM $schema.operations GROUP BY kind ORDER BY kind',
    )) as { kind: string; n: number }[];
    assert.equal(ops.find((op) => op.kind.includes('remove'))?.n, 3, 'one journaled removal per API call');
    // The controllers shared the fleet's background work: h2's drain came from one of them.
    // Waited for, not read at once: a server logs its pass after the commit the outbox query already sees, and its
    // lines reach this process through a pipe of their own.
    const confirmedByRetry = (): true | undefined =>
      servers.some((server) =>
        server.lines.some((line) => line.event === 'retry_pass' && Number(line['confirmed']) > 0),
      )
        ? true
        : undefined;
    await until('a retry_pass line that confirmed a deletion', () => Promise.resolve(confirmedByRetry()));
  });

  it('SIGKILL of one of two controllers at random points of a removal, 20 times: the survivor finishes it', async (t) => {
    const f = await fleet(t, 2);
    const lease = ['--lease-ms', '300', '--lease-grace-ms', '300'];
    const survivor = await f.serve(lease);
    let orphaned = 0;
    for (let round = 0; round < 20; round += 1) {
      const victim = await f.serve(lease);
      const vms = await seed(victim, f, `r${round}-`, 4);
      const names = vms.map((vm) => vm.name);
      const hung = f.agents[1];
      assert.ok(hung);
      const mark = hung.lines.length;
      const removal = call(victim, 'POST', '/v1/tpms/remove', { vms: names }).catch(() => undefined);
      if (round % 2 === 1) {
        // Odd rounds: h1 stops (SIGSTOP) once it answered the removal's probe, so the removal is left waiting on its
        // deletion there, past its first steps; the kill lands then. (Had the deletion slipped through first, the
        // round is one more random point.)
        await until('h1 to answer the probe', () =>
          Promise.resolve(hung.lines.slice(mark).some((text) => text.includes('"files.busy"')) ? true : undefined),
        );
        hung.process.kill('SIGSTOP');
        await until('the removal to be journaled', async () =>
          (await f.query("SELECT 1 FROM $schema.operations WHERE state = 'running'")).length > 0 ||
          (await f.query('SELECT 1 FROM $schema.tpms')).length === 0
            ? true
            : undefined,
        );
      } else {
        // Even rounds, a random point: before the request lands, inside the flow, or after it answered.
        await delay(Math.floor(Math.random() * 15));
      }
      victim.child.kill('SIGKILL');
      await victim.exited;
      hung.process.kill('SIGCONT');
      const answered = await removal;
      const running = await f.query("SELECT id FROM $schema.operations WHERE state = 'running'");
      if (running.length > 0) orphaned += 1;
      // Nothing journaled and the TPMs still there: the request never reached the flow. What a platform does with a
      // call that got no answer: call again, elsewhere.
      const left = await f.query('SELECT uuid FROM $schema.tpms');
      if (running.length === 0 && left.length > 0) {
        assert.equal(answered, undefined, 'an answered removal left no TPM');
        assert.equal((await call(survivor, 'POST', '/v1/tpms/remove', { vms: names })).status, 200);
      }
      await until(`round ${round}: the survivor to finish the removal`, async () => {
        const left = await f.query(
          "SELECT (SELECT count(*) FROM $schema.operations WHERE state = 'running')::int + " +
            '(SELECT count(*) FROM $schema.pending_deletions)::int + (SELECT count(*) FROM $schema.tpms)::int AS n',
        );
        return (left[0] as { n: number } | undefined)?.n === 0 ? true : undefined;
      });
      await assertSettled(f, vms);
    }
    t.diagnostic(`${orphaned} of 20 kills left a removal half done, finished by the survivor`);
    assert.ok(orphaned >= 5, `kills left removals half done for the survivor (${orphaned} of 20)`);
  });

  it('reconnects after its database connections are dropped, and carries on', async (t) => {
    const f = await fleet(t, 2);
    const lease = ['--lease-ms', '2000', '--lease-grace-ms', '500'];
    const [a, b] = [await f.serve(lease), await f.serve(lease)];
    const first = await seed(a, f, 'x', 4);
    // Every server connection of both controllers cut, as a PostgreSQL restart or a failover does.
    const cut = (await f.query(
      "SELECT pg_terminate_backend(pid) AS cut FROM pg_stat_activity WHERE application_name = 'hostfiles:' || '$schema'",
    )) as { cut: boolean }[];
    assert.ok(cut.length >= 2, `both controllers had connections (${cut.length})`);
    const second = await seed(b, f, 'y', 4);
    const removed = await Promise.all([
      call(a, 'POST', '/v1/tpms/remove', { vms: first.map((vm) => vm.name) }),
      call(b, 'POST', '/v1/tpms/remove', { vms: second.map((vm) => vm.name) }),
    ]).catch(async (error: unknown) => {
      // A controller that stopped answering: say how it ended and what it logged last (a CI run saw one refuse).
      const state = async (s: Served): Promise<string> => {
        const ended = await Promise.race([s.exited, delay(500).then(() => undefined)]);
        return `${ended === undefined ? 'running' : JSON.stringify(ended)}; last lines ${JSON.stringify(s.lines.slice(-5))}`;
      };
      throw new Error(`${String(error)}; serve a: ${await state(a)}; serve b: ${await state(b)}`, { cause: error });
    });
    for (const reply of removed) assert.equal(reply.status, 200, JSON.stringify(reply.body));
    await assertSettled(f, [...first, ...second]);
    // Neither lost its registration: both still serve.
    assert.deepEqual(
      [a, b].map((s) => s.lines.some((line) => line.event === 'controller_lost')),
      [false, false],
    );
    assert.equal((await call(b, 'GET', '/v1/hosts')).status, 200);
  });
});

for (const engine of ['sqlite', 'postgres'] as const)
  describe(
    `the CLI beside a running serve (${engine})`,
    { skip: engine === 'postgres' ? (POSTGRES_SKIP ?? false) : false },
    () => {
      it('`resume` leaves alone the sync serve is running on a hung host: its read is sent once', async (t) => {
        const f = await fleet(t, 1, engine);
        const server = await f.serve();
        const [vm] = await seed(server, f, 'vm', 1);
        const agent = f.agents[0];
        assert.ok(vm && agent);
        const db = ['--db', f.db, '--key', join(f.dir, 'hostfiles.key')];
        // The host hangs: the sync journals its operation, then waits on its read there.
        agent.process.kill('SIGSTOP');
        const mark = agent.lines.length;
        const sync = call(server, 'POST', `/v1/vms/${vm.name}/sync`);
        const running = await until('the sync to be journaled', async () => {
          const listed = await hostfiles([...db, '--json', 'ops', 'list', '--state', 'running']);
          assert.equal(listed.status, 0, listed.stderr);
          const ops = JSON.parse(listed.stdout) as { id: string }[];
          return ops.length > 0 ? ops : undefined;
        });
        // Before controllers registered, this resumed serve's sync and sent its read a second time.
        const resumed = await hostfiles([...db, '--json', 'resume']);
        assert.equal(resumed.status, 0, resumed.stderr);
        assert.deepEqual((JSON.parse(resumed.stdout) as { resumed: unknown[] }).resumed, [], "serve's, not an orphan");
        agent.process.kill('SIGCONT');
        assert.equal((await sync).status, 200);
        const reads = agent.lines
          .slice(mark)
          .filter((text) => text.includes('"files.read"') && !text.includes('"retry":true')).length;
        assert.equal(reads, 1, 'the read went to the host once, from serve alone');
        const shown = await hostfiles([...db, '--json', 'ops', 'show', running[0]?.id ?? '']);
        assert.equal((JSON.parse(shown.stdout) as { state: string }).state, 'done');
        t.diagnostic('resume took nothing of a live serve');
      });
    },
  );

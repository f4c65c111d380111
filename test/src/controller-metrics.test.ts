// `hostfiles serve --metrics-listen`: the real binary, a real database, a real agent; metrics scraped and parsed.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { signingKeyFromPem } from '@hostfiles/shared';
import { removeSetup, setupAgent, startAgent, type AgentHandle } from './support/agent-process.js';
import { cleanEnv, CLI, hostfiles } from './support/cli.js';
import { apiCall } from './support/serve.js';
import {
  documentedNames,
  family,
  labelValues,
  scrape,
  scrapeMetrics,
  valueOf,
  type Exposition,
} from './support/prometheus.js';

const TOKEN = randomBytes(24).toString('base64url');

type LogLine = Record<string, unknown> & { readonly event?: string };

interface Served {
  readonly url: string;
  readonly metricsPort: number;
  readonly child: ChildProcess;
  readonly lines: LogLine[];
  readonly exited: Promise<number | null>;
}

/** Starts `hostfiles serve` and resolves once it logged `listening` (after `metrics_listening`). */
async function startServe(args: readonly string[]): Promise<Served> {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], {
    env: cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  const lines: LogLine[] = [];
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (text) => {
      const line = JSON.parse(text) as LogLine;
      lines.push(line);
      if (line.event === 'listening') resolve();
    });
    void exited.then((code) => {
      reject(new Error(`serve exited (${String(code)}) before listening: ${stderr}`));
    });
  });
  const events = lines.map((line) => line.event);
  assert.ok(events.indexOf('metrics_listening') < events.indexOf('listening'), 'metrics listen first');
  const port = (name: string): number => lines.find((line) => line.event === name)?.['port'] as number;
  return { url: `http://127.0.0.1:${port('listening')}`, metricsPort: port('metrics_listening'), child, lines, exited };
}

let dir = '';
let db = '';
let tokenFile = '';
let agent: AgentHandle;
let server: Served;

const api = (method: string, path: string, body?: unknown) => apiCall(server, TOKEN, method, path, body);

/** Scrapes until `check` holds (each a real scrape, the health worker running meanwhile); fails past a deadline. */
async function scrapeUntil(what: string, check: (e: Exposition) => boolean): Promise<Exposition> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const e = await scrapeMetrics(server.metricsPort);
    if (check(e)) return e;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(50);
  }
}

const flows = (e: Exposition, kind: string, outcome: string): number =>
  valueOf(e, 'hostfiles_flows_total', { kind, outcome }) ?? 0;
const calls = (e: Exposition, kind: string, outcome: string): number =>
  valueOf(e, 'hostfiles_controller_agent_call_duration_seconds_count', { kind, outcome }) ?? 0;
const hosts = (e: Exposition, state: string): number | undefined => valueOf(e, 'hostfiles_hosts', { state });

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hostfiles-metrics-'));
  db = join(dir, 'hostfiles.db');
  const init = await hostfiles(['init', '--db', db]);
  assert.equal(init.status, 0, init.stderr);
  const key = signingKeyFromPem(readFileSync(join(dir, 'hostfiles.key'), 'utf8'));
  agent = await startAgent(setupAgent({ controllerKey: key }));
  tokenFile = join(dir, 'api.token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  server = await startServe([
    ...['--db', db, '--token-file', tokenFile, '--listen', '127.0.0.1:0'],
    ...['--metrics-listen', '127.0.0.1:0', '--health-interval-ms', '100'],
  ]);
});

after(async () => {
  if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGTERM');
  assert.equal(await server.exited, 0, 'serve stops cleanly, its metrics listener with it');
  await agent.stop();
  removeSetup(agent.setup);
  rmSync(dir, { recursive: true, force: true });
});

test('serve refuses metrics on a non-loopback address unless told, and the flag without --metrics-listen', async () => {
  const base = ['serve', '--db', db, '--token-file', tokenFile, '--listen', '127.0.0.1:0'];
  const open = await hostfiles([...base, '--metrics-listen', '0.0.0.0:0']);
  assert.equal(open.status, 2);
  assert.match(open.stderr, /metrics on 0\.0\.0\.0 would be open to anyone who can reach it/);
  const lone = await hostfiles([...base, '--metrics-allow-plain-http']);
  assert.equal(lone.status, 2);
  assert.match(lone.stderr, /--metrics-allow-plain-http goes with --metrics-listen/);
  const bad = await hostfiles([...base, '--metrics-listen', '9465']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--metrics-listen is HOST:PORT/);
});

test('the families, with no host yet; the API has no /metrics and the metrics listener nothing else', async () => {
  const e = await scrapeMetrics(server.metricsPort);
  assert.deepEqual([...e.types].sort(), [
    ['hostfiles_controller_agent_call_duration_seconds', 'histogram'],
    ['hostfiles_flows_total', 'counter'],
    ['hostfiles_hosts', 'gauge'],
    ['hostfiles_pending_deletion_oldest_age_seconds', 'gauge'],
    ['hostfiles_pending_deletions', 'gauge'],
  ]);
  // What the docs name is what serve serves (the agent's own names begin hostfiles_agent_).
  assert.deepEqual(
    [...documentedNames()].filter((name) => !name.startsWith('hostfiles_agent_')).sort(),
    [...e.types.keys()].sort(),
  );
  assert.equal(valueOf(e, 'hostfiles_pending_deletions'), 0);
  assert.equal(valueOf(e, 'hostfiles_pending_deletion_oldest_age_seconds'), 0);
  assert.deepEqual([hosts(e, 'Connected'), hosts(e, 'Disconnected')], [0, 0]);

  const onApi = await api('GET', '/metrics');
  assert.deepEqual([onApi.status, (onApi.body as { error: { code: string } }).error.code], [404, 'not_found']);
  assert.equal((await scrape(server.metricsPort, '/v1/hosts')).status, 404);
  assert.equal((await scrape(server.metricsPort, '/metrics', 'DELETE')).status, 405);
});

test('flows counted by kind and outcome, agent calls timed; a deletion pending against a stopped agent', async () => {
  const start = await scrapeMetrics(server.metricsPort);
  const added = await api('POST', '/v1/hosts', {
    name: 'h0',
    url: agent.url,
    expectKey: agent.publicKey,
  });
  assert.equal(added.status, 201, JSON.stringify(added.body));
  const vmUuid = randomUUID();
  const vm = { name: 'metrics-vm', uuid: vmUuid, host: 'h0', bootMode: 'UEFI', secureBoot: true };
  assert.equal((await api('POST', '/v1/vms', vm)).status, 201);
  assert.equal((await api('POST', '/v1/vms', vm)).status, 409, 'a second VM of that name: conflict');
  assert.equal((await api('POST', `/v1/vms/${vmUuid}/tpm`, { keyProvider: 'kms-1' })).status, 201);
  const tpmPath = join(agent.setup.roots.TpmState, vmUuid, 'tpm2-00.permall');
  const content = Buffer.from('seeds').toString('base64');
  const written = await api('POST', '/v1/files', { vm: vmUuid, type: 'TpmState', path: tpmPath, content });
  assert.equal(written.status, 201, JSON.stringify(written.body));
  const busy = await scrapeMetrics(server.metricsPort);
  assert.equal(hosts(busy, 'Connected'), 1);
  assert.equal(valueOf(busy, 'hostfiles_pending_deletions'), 0, "the write's guard went with its answer");
  assert.equal(calls(busy, 'files.apply', 'ok') - calls(start, 'files.apply', 'ok'), 1, 'one command for the write');
  assert.ok(calls(busy, 'info', 'ok') > calls(start, 'info', 'ok'), 'host add and health checks ask /v1/info');

  await agent.stop();
  const down = await scrapeUntil('h0 seen Disconnected', (e) => hosts(e, 'Disconnected') === 1);
  assert.equal(hosts(down, 'Connected'), 0);
  const removedAt = Date.now();
  const removal = await api('POST', '/v1/tpms/remove', { vms: [vmUuid] });
  assert.equal(removal.status, 200, JSON.stringify(removal.body));
  assert.deepEqual(
    (removal.body as { pending: { path: string }[] }).pending.map((p) => p.path),
    [tpmPath],
  );
  const pending = await scrapeMetrics(server.metricsPort);
  const scrapedAt = Date.now();
  assert.equal(valueOf(pending, 'hostfiles_pending_deletions'), 1);
  const age = valueOf(pending, 'hostfiles_pending_deletion_oldest_age_seconds') ?? NaN;
  assert.ok(age >= 0 && age <= (scrapedAt - removedAt) / 1000, `age ${age}`);
  const probed = calls(pending, 'files.busy', 'unreachable') - calls(down, 'files.busy', 'unreachable');
  assert.equal(probed, 1, "the removal's busy probe found nobody");
  const older = await scrapeUntil(
    'the age to grow',
    (e) => (valueOf(e, 'hostfiles_pending_deletion_oldest_age_seconds') ?? 0) > age,
  );
  assert.equal(valueOf(older, 'hostfiles_pending_deletions'), 1, 'still pending: the agent is down');

  // Exactly the flows the API ran, each once (the worker's retry passes are counted apart, under retry).
  const moved = family(older, 'hostfiles_flows_total')
    .filter((s) => s.labels['kind'] !== 'retry')
    .map(
      (s) =>
        [
          `${s.labels['kind']}/${s.labels['outcome']}`,
          s.value - flows(start, s.labels['kind'] ?? '', s.labels['outcome'] ?? ''),
        ] as const,
    )
    .filter(([, delta]) => delta !== 0);
  assert.deepEqual(Object.fromEntries(moved), {
    'host_add/ok': 1,
    'vm_add/ok': 1,
    'vm_add/conflict': 1,
    'tpm_add/ok': 1,
    'write/ok': 1,
    'remove_tpm/ok': 1,
  });

  // No VM, host, path or name is ever a label value; only the closed sets.
  const values = labelValues(older);
  for (const value of values) {
    for (const secret of [vmUuid, agent.setup.hostUuid, 'h0', 'metrics-vm', '/']) {
      assert.ok(!value.includes(secret), `${value} holds ${secret}`);
    }
  }
  const labelNames = new Set(older.samples.flatMap((s) => Object.keys(s.labels)));
  assert.deepEqual([...labelNames].sort(), ['kind', 'le', 'outcome', 'state']);
});

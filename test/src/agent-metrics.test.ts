// The agent's Prometheus metrics, scraped from a real agent process after real commands: exact increments, closed
// label sets, and a listener of their own that the agent's network listener does not share.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ENDPOINTS, generateSigningKey, OP_ERROR_CODES, REQUEST_ERROR_CODES } from '@hostfiles/shared';
import { removeSetup, setupAgent, startAgent, type AgentHandle } from './support/agent-process.js';
import {
  clientOf,
  commandPayload,
  deleteOp,
  errorCode,
  post,
  send,
  signedBody,
  writeOp,
  type AgentClient,
} from './support/commands.js';
import {
  documentedNames,
  family,
  labelValues,
  scrape,
  scrapeMetrics,
  valueOf,
  type Exposition,
} from './support/prometheus.js';
import { fetchAgent } from './support/tls.js';

let agent: AgentHandle;
let client: AgentClient;
let metricsPort: number;

before(async () => {
  agent = await startAgent(setupAgent({ config: { metrics: { host: '127.0.0.1', port: 0 } } }));
  client = await clientOf(agent);
  // Logged before `listening`, which startAgent waited for.
  const line = agent.lines
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => l['event'] === 'metrics_listening');
  assert.equal(typeof line?.['port'], 'number', 'metrics_listening logged with its port before listening');
  metricsPort = line?.['port'] as number;
  assert.notEqual(metricsPort, agent.port);
});
after(async () => {
  assert.equal(await agent.stop(), 0);
  removeSetup(agent.setup);
});

const ops = (e: Exposition, kind: string, outcome: string): number | undefined =>
  valueOf(e, 'hostfiles_agent_ops_total', { kind, outcome });
const refusals = (e: Exposition, code: string): number | undefined =>
  valueOf(e, 'hostfiles_agent_refusals_total', { code });
const requests = (e: Exposition, kind: string, outcome: string): number =>
  valueOf(e, 'hostfiles_agent_request_duration_seconds_count', { kind, outcome }) ?? 0;

test('the families: names, types and help; every op and refusal series there from the start at 0', async () => {
  const e = await scrapeMetrics(metricsPort);
  assert.deepEqual([...e.types].filter(([name]) => name.startsWith('hostfiles_')).sort(), [
    ['hostfiles_agent_body_bytes_in_flight', 'gauge'],
    ['hostfiles_agent_journal_bytes', 'gauge'],
    ['hostfiles_agent_ops_total', 'counter'],
    ['hostfiles_agent_refusals_total', 'counter'],
    ['hostfiles_agent_request_duration_seconds', 'histogram'],
  ]);
  for (const name of e.types.keys()) assert.ok(e.help.get(name), `${name} has help`);
  // Only this agent's own families: no default process metrics from a global registry.
  assert.deepEqual(
    [...e.types.keys()].filter((name) => !name.startsWith('hostfiles_')),
    [],
  );
  const outcomes = ['written', 'deleted', 'absent', 'failed', ...OP_ERROR_CODES];
  assert.deepEqual(
    family(e, 'hostfiles_agent_ops_total')
      .map((s) => `${s.labels['kind']}/${s.labels['outcome']}`)
      .sort(),
    ['write', 'writeDir', 'delete'].flatMap((kind) => outcomes.map((outcome) => `${kind}/${outcome}`)).sort(),
  );
  assert.deepEqual(
    family(e, 'hostfiles_agent_refusals_total')
      .map((s) => s.labels['code'])
      .sort(),
    [...REQUEST_ERROR_CODES].sort(),
  );
  assert.equal(valueOf(e, 'hostfiles_agent_body_bytes_in_flight'), 0);
  // What the docs name is what the agent serves (serve's names never begin hostfiles_agent_).
  assert.deepEqual(
    [...documentedNames()].filter((name) => name.startsWith('hostfiles_agent_')).sort(),
    [...e.types.keys()].sort(),
  );
});

test('a write and a delete through the agent: ops and request counts go up by exactly one each', async () => {
  const before = await scrapeMetrics(metricsPort);
  const vm = randomUUID();
  const path = join(agent.setup.roots.NvRam, `${vm}_VARS.fd`);
  const written = await send(client, 'files.apply', { ops: [writeOp('NvRam', path, 'vars')] });
  assert.equal(written.results[0]?.status, 'written');
  const deleted = await send(client, 'files.apply', { ops: [deleteOp('NvRam', path)] });
  assert.equal(deleted.results[0]?.status, 'deleted');
  const gone = await send(client, 'files.apply', { ops: [deleteOp('NvRam', path)] });
  assert.equal(gone.results[0]?.status, 'absent');
  const stat = await send(client, 'files.stat', { files: [{ type: 'NvRam', path }] });
  assert.equal(stat.results.length, 1);
  const now = await scrapeMetrics(metricsPort);

  const delta = (a: number | undefined, b: number | undefined): number => (b ?? NaN) - (a ?? NaN);
  assert.equal(delta(ops(before, 'write', 'written'), ops(now, 'write', 'written')), 1);
  assert.equal(delta(ops(before, 'delete', 'deleted'), ops(now, 'delete', 'deleted')), 1);
  assert.equal(delta(ops(before, 'delete', 'absent'), ops(now, 'delete', 'absent')), 1);
  // Nothing else moved.
  const moved = family(now, 'hostfiles_agent_ops_total').filter(
    (s) => s.value !== ops(before, s.labels['kind'] ?? '', s.labels['outcome'] ?? ''),
  );
  assert.deepEqual(moved.map((s) => `${s.labels['kind']}/${s.labels['outcome']}`).sort(), [
    'delete/absent',
    'delete/deleted',
    'write/written',
  ]);
  assert.equal(requests(now, 'files.apply', 'ok') - requests(before, 'files.apply', 'ok'), 3);
  assert.equal(requests(now, 'files.stat', 'ok') - requests(before, 'files.stat', 'ok'), 1);
  // A histogram as Prometheus reads it: cumulative buckets ending in +Inf, which equals the count.
  const buckets = family(now, 'hostfiles_agent_request_duration_seconds').filter(
    (s) => s.name.endsWith('_bucket') && s.labels['kind'] === 'files.apply' && s.labels['outcome'] === 'ok',
  );
  assert.equal(buckets.at(-1)?.labels['le'], '+Inf');
  assert.equal(buckets.at(-1)?.value, requests(now, 'files.apply', 'ok'));
  for (const [i, bucket] of buckets.entries()) assert.ok(i === 0 || bucket.value >= (buckets[i - 1]?.value ?? 0));
  assert.ok(
    (valueOf(now, 'hostfiles_agent_request_duration_seconds_sum', { kind: 'files.apply', outcome: 'ok' }) ?? 0) > 0,
  );
  // Every request was answered: no body is held any more. The journal grew by the records and answers.
  assert.equal(valueOf(now, 'hostfiles_agent_body_bytes_in_flight'), 0);
  assert.ok(
    (valueOf(now, 'hostfiles_agent_journal_bytes') ?? 0) > (valueOf(before, 'hostfiles_agent_journal_bytes') ?? 0),
  );

  // Neither the VM's uuid nor the host's, nor any path, is ever a label value.
  for (const value of labelValues(now)) {
    assert.ok(!value.includes(vm) && !value.includes(agent.setup.hostUuid) && !value.includes('/'), value);
  }
});

test('refusals are counted by code, whatever the sender put in its request; their requests timed as refused', async () => {
  const before = await scrapeMetrics(metricsPort);
  const garbage = await post(agent.url, ENDPOINTS['files.apply'], '{"keyId":"<script>","payload":1}');
  assert.equal(errorCode(garbage), 'bad_request');
  const stranger = generateSigningKey();
  const attacker = `${randomUUID()}-label`;
  const unknown = await post(
    agent.url,
    ENDPOINTS['files.apply'],
    signedBody(stranger, commandPayload('files.apply', agent.setup.hostUuid, { ops: [] })),
  );
  assert.equal(errorCode(unknown), 'unknown_key');
  const wrongHost = await post(
    agent.url,
    ENDPOINTS['files.stat'],
    signedBody(client.key, commandPayload('files.stat', attacker, { files: [] })),
  );
  assert.equal(wrongHost.status, 400, 'not even a uuid: refused by the command schema');
  const missing = await fetchAgent(`${agent.url}/v1/${attacker}`);
  assert.equal(missing.status, 404);
  await missing.body?.cancel();
  const now = await scrapeMetrics(metricsPort);

  const moved = Object.fromEntries(
    family(now, 'hostfiles_agent_refusals_total')
      .map((s) => [s.labels['code'] ?? '', s.value - (refusals(before, s.labels['code'] ?? '') ?? NaN)] as const)
      .filter(([, delta]) => delta !== 0),
  );
  assert.deepEqual(moved, { bad_request: 2, unknown_key: 1, not_found: 1 });
  assert.equal(requests(now, 'files.apply', 'refused') - requests(before, 'files.apply', 'refused'), 2);
  assert.equal(requests(now, 'files.stat', 'refused') - requests(before, 'files.stat', 'refused'), 1);
  for (const value of labelValues(now)) assert.ok(!value.includes(attacker) && !value.includes('script'), value);
});

test("the metrics listener answers GET /metrics only; the agent's own listener has no /metrics", async () => {
  const head = await scrape(metricsPort, '/metrics', 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.text, '');
  const post = await scrape(metricsPort, '/metrics', 'POST');
  assert.equal(post.status, 405);
  const other = await scrape(metricsPort, '/v1/info');
  assert.equal(other.status, 404);
  assert.equal(other.text, 'not found\n', 'nothing of the request echoed');
  const query = await scrape(metricsPort, '/metrics?x=1');
  assert.equal(query.status, 200);

  const onAgent = await fetchAgent(`${agent.url}/metrics`);
  assert.equal(onAgent.status, 404);
  assert.doesNotMatch(await onAgent.text(), /hostfiles_/);
});

test('an agent whose config has no metrics opens no metrics listener', async () => {
  const plain = await startAgent();
  try {
    assert.deepEqual(
      plain.lines.map((l) => (JSON.parse(l) as { event?: string }).event).filter((e) => e?.startsWith('metrics')),
      [],
    );
  } finally {
    assert.equal(await plain.stop(), 0);
    removeSetup(plain.setup);
  }
});

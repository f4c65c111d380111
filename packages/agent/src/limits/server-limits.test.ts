// The limits of the agent's config: their defaults (some follow maxBodyBytes), what is refused, Node's options.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exampleConfig, parseConfig } from '../config.js';
import { dropReporter, resolveLimits, serverOptions } from './server-limits.js';

const MIB = 1024 * 1024;
const valid = { ...exampleConfig(), trustedKeys: [Buffer.alloc(32, 1).toString('base64')] };

test('defaults: 32 MiB in flight, 256 connections, 20 new a second and 32 open per address, 10 s for headers, the request time following maxBodyBytes', () => {
  assert.deepEqual(resolveLimits(4 * MIB, {}), {
    bodyBytesInFlight: 32 * MIB,
    largeBodyBytesPerSecond: 32 * MIB,
    maxConnections: 256,
    newConnectionsPerSecond: 20,
    newConnectionsBurst: 64,
    connectionsPerAddress: 32,
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 74_000,
    keepAliveTimeoutMs: 5_000,
  });
  const large = resolveLimits(32 * MIB, { headersTimeoutMs: 1000 });
  assert.ok(large.bodyBytesInFlight * 0.75 >= 2 * 32 * MIB, 'room for two maximum bodies among the large ones');
  assert.equal(large.requestTimeoutMs, 1000 + 512_000);
  const parsed = parseConfig({ ...valid, limits: undefined });
  assert.ok(parsed.ok);
  assert.deepEqual(parsed.value.limits, {});
});

test('a budget a maximum body does not fit, a request timeout under the headers one, unknown keys: refused', () => {
  const bad = parseConfig({
    ...valid,
    maxBodyBytes: 8 * MIB,
    limits: { bodyBytesInFlight: 8 * MIB, headersTimeoutMs: 5000, requestTimeoutMs: 4000, extra: 1 },
  });
  assert.ok(!bad.ok);
  assert.ok(
    bad.error.some((line) => line.startsWith('limits:') && line.includes('extra')),
    bad.error.join(' | '),
  );
  const checked = parseConfig({
    ...valid,
    maxBodyBytes: 8 * MIB,
    limits: { bodyBytesInFlight: 8 * MIB, headersTimeoutMs: 5000, requestTimeoutMs: 4000 },
  });
  assert.ok(!checked.ok);
  assert.deepEqual(
    checked.error.map((line) => line.split(':')[0]),
    ['limits.bodyBytesInFlight', 'limits.requestTimeoutMs'],
  );
});

test("Node's options: both timeouts, checked often enough", () => {
  assert.deepEqual(serverOptions(resolveLimits(4 * MIB, { headersTimeoutMs: 300, requestTimeoutMs: 1000 })), {
    headersTimeout: 300,
    requestTimeout: 1000,
    keepAliveTimeout: 5000,
    connectionsCheckingInterval: 75,
  });
  assert.equal(serverOptions(resolveLimits(4 * MIB, {})).connectionsCheckingInterval, 1000);
});

test('dropped connections are reported at most once a minute, with the count since the last report', () => {
  let time = 0;
  const reports: number[] = [];
  const onDrop = dropReporter(
    (dropped) => reports.push(dropped),
    () => time,
  );
  for (let i = 0; i < 1000; i++) {
    time += 100;
    onDrop();
  }
  // The first at once; the next a minute later, counting the 600 since; the last 399 wait for a later drop.
  assert.deepEqual(reports, [1, 600]);
});

// The flow routes' table against the app's routes, and what the API tells the metrics of each flow it ran.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FlowKind, FlowOutcome } from '../metrics/serve-metrics.js';
import { FLOW_KINDS } from '../metrics/serve-metrics.js';
import { FLOW_ROUTES } from './flow-routes.js';
import { AUTH, createTestApi } from './test-support.js';

test('every flow route is a route of the app, and every flow kind has one', async (t) => {
  const { app } = await createTestApi(t);
  const routes = new Set(app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method} ${r.path}`));
  for (const route of FLOW_ROUTES.keys()) assert.ok(routes.has(route), `${route} is a route`);
  assert.deepEqual([...new Set(FLOW_ROUTES.values())].sort(), [...FLOW_KINDS].sort());
});

test('a flow route tells its kind and outcome once answered; reads, refusals of the token and 404s tell nothing', async (t) => {
  const seen: [FlowKind, FlowOutcome][] = [];
  const { app } = await createTestApi(t, { onFlow: (kind, outcome) => seen.push([kind, outcome]) });
  const json = { ...AUTH, 'content-type': 'application/json' };
  const vm = JSON.stringify({ name: 'v', host: 'nowhere', bootMode: 'UEFI', secureBoot: false });
  assert.equal((await app.request('/v1/vms', { method: 'POST', headers: json, body: vm })).status, 404);
  assert.equal((await app.request('/v1/vms', { method: 'POST', headers: json, body: '{' })).status, 400);
  assert.equal((await app.request('/v1/vms/x/sync', { method: 'POST', headers: AUTH })).status, 404);
  assert.equal((await app.request('/v1/vms', { headers: AUTH })).status, 200);
  assert.equal((await app.request('/v1/retry', { method: 'POST', headers: AUTH })).status, 200);
  assert.equal((await app.request('/v1/retry', { method: 'POST' })).status, 401);
  assert.equal((await app.request('/v1/nothing', { method: 'POST', headers: AUTH })).status, 404);
  assert.deepEqual(seen, [
    ['vm_add', 'not_found'],
    ['vm_add', 'bad_request'],
    ['sync', 'not_found'],
    ['retry', 'ok'],
  ]);
});

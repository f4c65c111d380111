// The API app in-process (app.request) over a real SQLite file: routes against the OpenAPI document, the token,
// bodies, and the mapping of every kind of error. test/src/controller-api.test.ts drives the real `serve`.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { addHost } from '../store/test-support.js';
import { OPENAPI_DOCUMENT } from './openapi.js';
import { AUTH, createTestApi, TOKEN } from './test-support.js';

const setup = async (t: TestContext, maxBodyBytes?: number) =>
  createTestApi(t, maxBodyBytes === undefined ? {} : { maxBodyBytes });

interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string; readonly problems?: { path: string }[] };
}
const errorOf = async (response: Response): Promise<ErrorBody['error']> => ((await response.json()) as ErrorBody).error;

const documented = (): string[] =>
  Object.entries(OPENAPI_DOCUMENT.paths).flatMap(([path, methods]) =>
    Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
  );

test('the OpenAPI document names exactly the routes the app has, each path parameter declared', async (t) => {
  const { app } = await setup(t);
  const routes = app.routes
    .filter((route) => route.method !== 'ALL') // middleware
    .map((route) => `${route.method} ${route.path.replace(/:(\w+)/g, '{$1}')}`);
  assert.deepEqual([...new Set(routes)].sort(), documented().sort());
  for (const [path, methods] of Object.entries(OPENAPI_DOCUMENT.paths)) {
    const params = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
    for (const op of Object.values(methods) as { parameters?: { name: string; in: string }[] }[]) {
      assert.deepEqual(
        (op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name),
        params,
        `${path}: its parameters`,
      );
    }
  }
  const schemas = Object.keys(OPENAPI_DOCUMENT.components.schemas);
  for (const ref of JSON.stringify(OPENAPI_DOCUMENT).matchAll(/"#\/components\/schemas\/(\w+)"/g)) {
    assert.ok(schemas.includes(ref[1] ?? ''), `${ref[1] ?? ''} is defined`);
  }
});

test('every route but health needs the bearer token, compared exactly', async (t) => {
  const { app } = await setup(t);
  assert.deepEqual(await (await app.request('/v1/health')).json(), { status: 'ok' });
  for (const route of documented().filter((r) => r !== 'GET /v1/health')) {
    const [method = '', path = ''] = route.split(' ');
    const url = path.replace(/\{\w+\}/g, 'x');
    for (const authorization of [undefined, `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, `Basic ${TOKEN}`]) {
      const response = await app.request(url, {
        method,
        headers: authorization === undefined ? {} : { authorization },
      });
      assert.equal(response.status, 401, `${route} with ${authorization ?? 'no token'}`);
      assert.equal((await errorOf(response)).code, 'unauthorized');
      assert.match(response.headers.get('www-authenticate') ?? '', /^Bearer/);
    }
  }
  assert.equal((await app.request('/v1/no-such-route')).status, 401, 'no token, no route list either');
  const ok = await app.request('/v1/hosts', { headers: AUTH });
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), { hosts: [] });
  const missing = await app.request('/v1/no-such-route', { headers: AUTH });
  assert.equal(missing.status, 404);
  assert.equal((await errorOf(missing)).code, 'not_found');
});

test('bodies: a size cap declared or streamed, strict JSON, every problem listed', async (t) => {
  const { app } = await setup(t, 1024);
  const post = async (
    body: string | Uint8Array | ReadableStream<Uint8Array>,
    headers: Record<string, string> = {},
  ): Promise<Response> =>
    app.request('/v1/vms', { method: 'POST', body, headers: { ...AUTH, ...headers }, duplex: 'half' });

  const declared = await post('{}', { 'content-length': '1025' });
  assert.equal(declared.status, 413);
  assert.equal((await errorOf(declared)).code, 'too_large');
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      for (let i = 0; i < 4; i++) controller.enqueue(Buffer.alloc(512, 0x20));
      controller.close();
    },
  });
  assert.equal((await post(stream)).status, 413, 'a body without a length is counted as it is read');

  for (const [body, message] of [
    ['not json', /not JSON/],
    ['{"name":"a","name":"b"}', /not JSON/],
    [Buffer.from([0x7b, 0xff, 0x7d]), /not UTF-8/],
  ] as const) {
    const response = await post(body);
    assert.equal(response.status, 400);
    const error = await errorOf(response);
    assert.equal(error.code, 'bad_request');
    assert.match(error.message, message);
  }
  const invalid = await post(JSON.stringify({ name: '', bootMode: 'BIOS', secureBoot: 'yes', extra: 1 }));
  assert.equal(invalid.status, 400);
  assert.deepEqual(
    ((await errorOf(invalid)).problems ?? []).map((p) => p.path).sort(),
    ['', 'bootMode', 'host', 'name', 'secureBoot'],
    'each field, and the unknown one at the top',
  );
});

test('errors: flows 404/400/409, store conflicts 409 without SQL, agents 502, anything else 500 and logged', async (t) => {
  const { app, store, lines } = await setup(t);
  const send = async (method: string, path: string, body?: unknown): Promise<Response> =>
    app.request(path, {
      method,
      headers: AUTH,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const expect = async (response: Response, status: number, code: string): Promise<string> => {
    assert.equal(response.status, status);
    const error = await errorOf(response);
    assert.equal(error.code, code);
    return error.message;
  };

  await expect(await send('DELETE', '/v1/vms/nope'), 404, 'not_found');
  await expect(await send('GET', '/v1/vms/nope/files'), 404, 'not_found');
  await expect(await send('POST', '/v1/tpms/remove', { vms: ['nope'] }), 404, 'not_found');
  await addHost(store, 'h0');
  const vm = { name: 'a', host: 'h0', bootMode: 'Legacy', secureBoot: true };
  assert.match(await expect(await send('POST', '/v1/vms', vm), 400, 'bad_request'), /secure boot needs UEFI/);
  assert.equal((await send('POST', '/v1/vms', { ...vm, secureBoot: false })).status, 201);
  const taken = await expect(await send('POST', '/v1/vms', { ...vm, secureBoot: false }), 409, 'conflict');
  assert.doesNotMatch(taken, /UNIQUE|SQLITE|constraint failed/);
  assert.equal((await send('POST', '/v1/vms/a/tpm', { keyProvider: 'kms' })).status, 201);
  await expect(await send('POST', '/v1/vms/a/tpm', { keyProvider: 'kms' }), 409, 'conflict');
  // Port 1 on loopback: nothing listens, the connection is refused at once.
  await expect(
    await send('POST', '/v1/hosts', { name: 'h1', url: 'http://127.0.0.1:1', trustOnFirstUse: true }),
    502,
    'agent_unreachable',
  );

  await store.close();
  const broken = await send('GET', '/v1/hosts');
  const message = await expect(broken, 500, 'internal');
  const errorId = /^internal error \(([0-9a-f-]{36})\)$/.exec(message)?.[1];
  assert.ok(errorId !== undefined, message);
  const logged = lines.find((line) => line['event'] === 'internal_error');
  assert.equal(logged?.['errorId'], errorId, 'the log line the answer points to');
  assert.equal(logged['level'], 'error');
  const access = lines.filter((line) => line['event'] === 'request');
  assert.equal(access.at(-1)?.['status'], 500, 'every request is logged with its status');
});

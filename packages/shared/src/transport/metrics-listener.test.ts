// The metrics listener over a real node:http server on port 0: GET /metrics only, a failed scrape a bare 500.
import assert from 'node:assert/strict';
import { request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { createMetricsServer, type Exposition } from './metrics-listener.js';

async function serve(t: TestContext, scrape: () => Promise<Exposition>, errors: unknown[]): Promise<number> {
  const server: Server = createMetricsServer(scrape, (error) => errors.push(error));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return (server.address() as AddressInfo).port;
}

function call(port: number, method: string, path: string): Promise<{ status: number; type: string; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'] ?? '', text });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

test('GET and HEAD /metrics answer the scrape; other paths 404, other methods 405, nothing echoed', async (t) => {
  const errors: unknown[] = [];
  let scrapes = 0;
  const port = await serve(
    t,
    () => {
      scrapes++;
      return Promise.resolve({ contentType: 'text/plain; version=0.0.4; charset=utf-8', body: 'hostfiles_x 1\n' });
    },
    errors,
  );
  assert.deepEqual(await call(port, 'GET', '/metrics'), {
    status: 200,
    type: 'text/plain; version=0.0.4; charset=utf-8',
    text: 'hostfiles_x 1\n',
  });
  assert.equal((await call(port, 'HEAD', '/metrics')).text, '');
  assert.equal((await call(port, 'GET', '/metrics?name[]=x')).status, 200);
  const other = await call(port, 'GET', '/metrics/<script>');
  assert.deepEqual([other.status, other.text], [404, 'not found\n']);
  assert.equal((await call(port, 'POST', '/metrics')).status, 405);
  assert.equal(scrapes, 3, 'only GET and HEAD /metrics scrape');
  assert.deepEqual(errors, []);
});

test('a scrape that fails answers a bare 500 and tells onError, never the error to the scraper', async (t) => {
  const errors: unknown[] = [];
  const port = await serve(t, () => Promise.reject(new Error('database is locked: /secret/path')), errors);
  const reply = await call(port, 'GET', '/metrics');
  assert.deepEqual([reply.status, reply.text], [500, 'scrape failed\n']);
  assert.equal(errors.length, 1);
  assert.match(String(errors[0]), /database is locked/);
});

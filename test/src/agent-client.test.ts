// The controller's agent client against real agents and against servers that misbehave on purpose.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { attemptTimeoutMs, createAgentClient, isAgentCallError, type AgentTarget } from '@hostfiles/controller';
import { generateSigningKey, writeOp } from '@hostfiles/shared';
import { removeSetup, startAgent, type AgentHandle } from './support/agent-process.js';
import { fetchAgent } from './support/tls.js';

let agent: AgentHandle;
let target: AgentTarget;

before(async () => {
  agent = await startAgent();
  const info = await createAgentClient({
    key: agent.setup.controllerKey,
    timeoutMs: 2000,
    retries: 0,
    now: Date.now,
  }).info(agent);
  target = { uuid: info.hostUuid, url: agent.url, publicKey: info.publicKey, certificate: agent.certificate };
});
after(async () => {
  await agent.stop();
  removeSetup(agent.setup);
});

const client = (retries = 0, timeoutMs = 2000) =>
  createAgentClient({ key: agent.setup.controllerKey, timeoutMs, retries, now: Date.now, backoffMs: 0 });

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail('expected a rejection');
}

test('a signed command reaches a real agent and its answer is verified against the pinned key', async () => {
  const path = join(agent.setup.roots.TpmState, 'vm', 'state');
  const answer = await client().send(target, 'files.apply', { ops: [writeOp('TpmState', path, Buffer.from('x'))] });
  assert.deepEqual(
    answer.results.map((r) => r.status),
    ['written'],
  );
});

test('an answer signed by another key than the pinned one is never trusted', async () => {
  const error = await rejection(
    client().send({ ...target, publicKey: generateSigningKey().publicKey }, 'files.list', { types: ['NvRam'] }),
  );
  assert.ok(isAgentCallError(error));
  assert.equal(error.failure, 'bad_answer');
});

test('a refusal is not retried and carries the agent code', async () => {
  const other = { ...target, uuid: '7d0c3b1e-5b8a-4c39-9d2f-1f6f0e2a4b11' };
  const error = await rejection(client(3).send(other, 'files.list', { types: ['NvRam'] }));
  assert.ok(isAgentCallError(error));
  assert.deepEqual(
    [error.failure, error.details.agentCode, error.details.status, error.details.attempts],
    ['refused', 'wrong_host', 403, 1],
  );
});

test('a host that is down: unreachable after every attempt', async () => {
  const closed = await listen(createServer());
  const url = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
  await new Promise((resolve) => closed.close(resolve));
  const error = await rejection(
    client(2).send({ ...target, url, certificate: null }, 'files.list', { types: ['NvRam'] }),
  );
  assert.ok(isAgentCallError(error));
  assert.deepEqual([error.failure, error.details.attempts], ['unreachable', 3]);
});

test('timeouts and 5xx are retried with the very same signed bytes', async (t) => {
  const bodies: string[] = [];
  let calls = 0;
  const flaky = await listen(
    createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        bodies.push(body);
        calls++;
        if (calls === 1) return; // never answers: a timeout
        res
          .writeHead(503, { 'content-type': 'application/json' })
          .end('{"error":{"code":"unavailable","message":"busy"}}');
      });
    }),
  );
  t.after(() => {
    flaky.closeAllConnections();
    flaky.close();
  });
  const url = `http://127.0.0.1:${(flaky.address() as AddressInfo).port}`;
  const error = await rejection(
    client(2, 300).send({ ...target, url, certificate: null }, 'files.list', { types: ['TpmState'] }),
  );
  assert.ok(isAgentCallError(error));
  assert.deepEqual([error.failure, error.details.status, error.details.attempts], ['refused', 503, 3]);
  assert.equal(bodies.length, 3);
  assert.ok(
    bodies.every((body) => body === bodies[0]),
    'every attempt resent the same bytes',
  );
});

function listen(server: Server): Promise<Server> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      resolve(server);
    }),
  );
}

test("an agent's error body is read to a small cap only: an endless 500 answer is refused, not buffered", async (t) => {
  let sent = 0;
  let hungUp: (bytes: number) => void = () => undefined;
  const closed = new Promise<number>((resolve) => (hungUp = resolve));
  const endless = await listen(
    createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(500, { 'content-type': 'application/json' });
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        // Writes for as long as the client reads: the client must be the one that stops.
        const pump = (): void => {
          while (!res.destroyed && sent < 1024 * 1024 * 1024) {
            sent += chunk.length;
            if (!res.write(chunk)) {
              res.once('drain', pump);
              return;
            }
          }
        };
        res.on('close', () => {
          hungUp(sent);
        });
        pump();
      });
    }),
  );
  t.after(() => {
    endless.closeAllConnections();
    endless.close();
  });
  const url = `http://127.0.0.1:${(endless.address() as AddressInfo).port}`;
  // A deadline far beyond what reading a few MiB takes: only the cap can end this call early.
  const error = await rejection(
    client(0, 60_000).send({ ...target, url, certificate: null }, 'files.list', { types: ['NvRam'] }),
  );
  assert.ok(isAgentCallError(error));
  assert.deepEqual([error.failure, error.details.status, error.details.agentCode], ['refused', 500, undefined]);
  assert.equal(error.message, 'HTTP 500');
  // What the server got out before the client hung up: the cap plus what socket buffers hold, far from 1 GiB.
  const bytes = await closed;
  assert.ok(bytes < 32 * 1024 * 1024, `the server wrote ${String(bytes)} bytes before the client hung up`);
});

test('a redirect is never followed: the signed command goes nowhere else', async (t) => {
  let elsewhere = 0;
  const trap = await listen(
    createServer((_req, res) => {
      elsewhere++;
      res.end();
    }),
  );
  const trapUrl = `http://127.0.0.1:${(trap.address() as AddressInfo).port}`;
  const redirecting = await listen(
    createServer((req, res) => {
      req.resume();
      res.writeHead(307, { location: `${trapUrl}/steal` }).end();
    }),
  );
  t.after(() => {
    trap.close();
    redirecting.close();
  });
  const url = `http://127.0.0.1:${(redirecting.address() as AddressInfo).port}`;
  const error = await rejection(
    client().send({ ...target, url, certificate: null }, 'files.list', { types: ['TpmState'] }),
  );
  assert.ok(isAgentCallError(error));
  assert.deepEqual([error.failure, error.details.status], ['refused', 307]);
  assert.equal(elsewhere, 0);
});

test("an attempt's deadline grows with the bytes it moves: a large state is not cut off at the fixed timeout", async (t) => {
  assert.equal(attemptTimeoutMs(10_000, 0), 10_000);
  assert.equal(attemptTimeoutMs(10_000, 64 * 1024 * 1024), 26_000, '64 MiB at 4 MiB/s: 16 s more');
  // A host that takes 600 ms to answer (an agent inflating, hashing and fsyncing a large store), a 200 ms timeout.
  const slow = await listen(
    createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        setTimeout(() => {
          void fetchAgent(`${agent.url}${req.url ?? ''}`, { method: 'POST', body: Buffer.concat(chunks) })
            .then(async (answer) => {
              res.writeHead(answer.status, { 'content-type': 'application/json' }).end(await answer.text());
            })
            .catch(() => res.destroy());
        }, 600);
      });
    }),
  );
  t.after(() => {
    slow.closeAllConnections();
    slow.close();
  });
  const url = `http://127.0.0.1:${(slow.address() as AddressInfo).port}`;
  const fixed = await rejection(
    client(0, 200).send({ ...target, url, certificate: null }, 'files.list', { types: ['NvRam'] }),
  );
  assert.ok(isAgentCallError(fixed));
  assert.equal(fixed.failure, 'timeout');
  // The same call announcing 8 MiB of work gets 2 s more: it is answered.
  const answer = await client(0, 200).send(
    { ...target, url, certificate: null },
    'files.list',
    { types: ['NvRam'] },
    { bytes: 8 * 1024 * 1024 },
  );
  assert.equal(answer.kind, 'files.list');
});

// The controller's agent client against real agents and against servers that misbehave on purpose.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { closeSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, before, test, type TestContext } from 'node:test';
import {
  attemptTimeoutMs,
  createAgentClient,
  isAgentCallError,
  listingWithinMs,
  type AgentTarget,
} from '@hostfiles/controller';
import {
  ANSWER_CONTEXT,
  ANSWER_WITHIN_HEADER,
  answerByteCap,
  generateSigningKey,
  signEnvelope,
  signingKeyFromPem,
  writeOp,
  type SigningKey,
} from '@hostfiles/shared';
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
  assert.deepEqual([error.failure, error.details.attempts, error.details.errnos], ['unreachable', 3, ['ECONNREFUSED']]);
});

test('timeouts and 5xx are retried with the very same signed bytes', async (t) => {
  const bodies: string[] = [];
  let calls = 0;
  const url = await serving(
    t,
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

/** Listens on loopback until the test ends (its connections closed then too), and answers its URL. */
async function serving(t: TestContext, server: Server): Promise<string> {
  await listen(server);
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

test('the client opens at most 16 connections to one agent: commands past them wait their turn', async (t) => {
  let open = 0;
  let most = 0;
  let opened = 0;
  const waiting: ServerResponse[] = [];
  const refuse = (res: ServerResponse): void => {
    res.writeHead(403, { 'content-type': 'application/json' }).end('{"error":{"code":"wrong_host","message":"no"}}');
  };
  let released = false;
  const holder = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (released) {
        refuse(res);
        return;
      }
      waiting.push(res);
      // Held until 16 wait at once, then all answered: the rest may only come on those same connections.
      if (waiting.length < 16) return;
      released = true;
      for (const held of waiting.splice(0)) refuse(held);
    });
  });
  holder.on('connection', (socket) => {
    opened++;
    most = Math.max(most, ++open);
    socket.once('close', () => open--);
  });
  const url = await serving(t, holder);
  const one = client(0, 5000);
  t.after(() => one.close());
  const errors = await Promise.all(
    Array.from({ length: 40 }, () =>
      rejection(one.send({ ...target, url, certificate: null }, 'files.list', { types: ['TpmState'] })),
    ),
  );
  assert.ok(errors.every((error) => isAgentCallError(error) && error.failure === 'refused'));
  assert.equal(most, 16, 'never more than 16 open at once');
  assert.equal(opened, 16, 'and the others came on them, kept alive');
});

test("a command waiting for one of the 16 connections does not spend its attempt's deadline waiting, and is signed at its call", async (t) => {
  // Every command takes this agent 1 s to answer (refused: nothing is retried); each attempt has 1.5 s. The 17th
  // waits 1 s for a connection, then takes 1 s of its own: 2 s from its call, within its attempt's 1.5 s.
  const issued: number[] = [];
  const url = await serving(
    t,
    createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const { payload } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { payload: string };
        issued.push((JSON.parse(Buffer.from(payload, 'base64').toString('utf8')) as { issuedAt: number }).issuedAt);
        setTimeout(() => {
          res.writeHead(403, JSON_TYPE).end('{"error":{"code":"wrong_host","message":"no"}}');
        }, 1000);
      });
    }),
  );
  const one = client(0, 1500);
  t.after(() => one.close());
  const failures = await Promise.all(
    Array.from({ length: 17 }, () =>
      rejection(one.send({ ...target, url, certificate: null }, 'files.list', { types: ['TpmState'] })),
    ),
  );
  assert.deepEqual(
    failures.map((error) => (isAgentCallError(error) ? error.failure : String(error))),
    Array.from({ length: 17 }, () => 'refused'),
    'every command answered, none timed out',
  );
  // Signed when called, not when its turn came: a flow arms its guards before it sends, counting on no command being
  // valid past its call plus its life (place.ts, GUARD_DELAY_MS).
  assert.equal(issued.length, 17);
  const spread = Math.max(...issued) - Math.min(...issued);
  assert.ok(spread < 500, `the 17th, sent ~1 s after the first, was signed ${spread} ms after it`);
});

test("an agent's error body is read to a small cap only: an endless 500 answer is refused, not buffered", async (t) => {
  let sent = 0;
  let hungUp: (bytes: number) => void = () => undefined;
  const closed = new Promise<number>((resolve) => (hungUp = resolve));
  const url = await serving(
    t,
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
  const url = await serving(
    t,
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

test("a listing is told the time it has (its share of the attempt's deadline); no other command is", async (t) => {
  const seen: { url: string; within: string | undefined }[] = [];
  const url = await serving(
    t,
    createServer((req, res) => {
      seen.push({ url: req.url ?? '', within: req.headers[ANSWER_WITHIN_HEADER] as string | undefined });
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        void fetchAgent(`${agent.url}${req.url ?? ''}`, { method: 'POST', body: Buffer.concat(chunks) })
          .then(async (answer) => {
            res.writeHead(answer.status, JSON_TYPE).end(await answer.text());
          })
          .catch(() => res.destroy());
      });
    }),
  );
  const via = { ...target, url, certificate: null };
  await client(0, 2000).send(via, 'files.list', { types: ['NvRam'] });
  await client(0, 2000).send(via, 'files.list', { types: ['NvRam'] }, { bytes: 8 * 1024 * 1024 });
  await client(0, 2000).send(via, 'files.stat', {
    files: [{ type: 'NvRam', path: join(agent.setup.roots.NvRam, 'x') }],
  });
  assert.deepEqual(seen, [
    { url: '/v1/files/list', within: '1400' },
    { url: '/v1/files/list', within: String(Math.floor(0.7 * attemptTimeoutMs(2000, 8 * 1024 * 1024))) },
    { url: '/v1/files/stat', within: undefined },
  ]);
  assert.equal(listingWithinMs(attemptTimeoutMs(2000, 8 * 1024 * 1024)), 2800, '70 % of 2 s + 2 s for 8 MiB');
});

/**
 * A relay in front of the real agent: each command goes to the agent, and `respond` answers the client with what it
 * makes of the agent's answer (a 200's text).
 */
async function rewritingRelay(t: TestContext, respond: (answer: string, res: ServerResponse) => void): Promise<string> {
  return serving(
    t,
    createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        void fetchAgent(`${agent.url}${req.url ?? ''}`, { method: 'POST', body: Buffer.concat(chunks) })
          .then(async (answer) => {
            assert.equal(answer.status, 200);
            respond(await answer.text(), res);
          })
          .catch(() => res.destroy());
      });
    }),
  );
}

const JSON_TYPE = { 'content-type': 'application/json' };

/** The agent's own key, read from its key file: what signs an answer the client must trust but for its content. */
const agentKey = (): SigningKey => signingKeyFromPem(readFileSync(agent.setup.keyFile, 'utf8'));

/** The agent's answer with its payload changed, signed again with the agent's own (the pinned) key. */
function resigned(answer: string, change: (payload: Record<string, unknown>) => Record<string, unknown>): string {
  const { payload } = JSON.parse(answer) as { payload: string };
  const parsed = JSON.parse(Buffer.from(payload, 'base64').toString('utf8')) as Record<string, unknown>;
  return JSON.stringify(signEnvelope(ANSWER_CONTEXT, change(parsed), agentKey()));
}

test("a genuine answer to an earlier command is refused: an answer is bound to its command's requestId", async (t) => {
  let first: string | undefined;
  // Answers every command with the first answer it relayed: signed by the pinned key, for another request.
  const url = await rewritingRelay(t, (answer, res) => {
    first ??= answer;
    res.writeHead(200, JSON_TYPE).end(first);
  });
  const relayed = { ...target, url, certificate: null };
  const answered = await client().send(relayed, 'files.list', { types: ['NvRam'] });
  const error = await rejection(client().send(relayed, 'files.list', { types: ['NvRam'] }));
  assert.ok(isAgentCallError(error));
  assert.equal(error.failure, 'bad_answer');
  assert.match(
    error.message,
    new RegExp(`^the agent's answer is for request ${answered.requestId}, not [0-9a-f-]{36}$`),
  );
});

test('an answer signed by the pinned key for another host is refused: an answer is bound to its host', async (t) => {
  const otherHost = randomUUID();
  let change = (payload: Record<string, unknown>): Record<string, unknown> => payload;
  const url = await rewritingRelay(t, (answer, res) => {
    res.writeHead(200, JSON_TYPE).end(resigned(answer, change));
  });
  const relayed = { ...target, url, certificate: null };
  // Signed again as it was: accepted, so what refuses it next is the host it names and nothing else.
  assert.equal((await client().send(relayed, 'files.list', { types: ['NvRam'] })).hostUuid, target.uuid);
  change = (payload) => ({ ...payload, hostUuid: otherHost });
  const error = await rejection(client().send(relayed, 'files.list', { types: ['NvRam'] }));
  assert.ok(isAgentCallError(error));
  assert.equal(error.failure, 'bad_answer');
  assert.equal(error.message, `the agent's answer comes from host ${otherHost}, not ${target.uuid}`);
});

test('a 200 answer is read to its cap (256 MiB): a valid answer padded past it is refused, not read to its end', async (t) => {
  const cap = 256 * 1024 * 1024;
  let padding = 64;
  let hungUp: (bytes: number) => void = () => undefined;
  let closed = new Promise<number>((resolve) => (hungUp = resolve));
  // The agent's answer, then `padding` spaces: whitespace after the envelope leaves it the same valid answer.
  const url = await rewritingRelay(t, (answer, res) => {
    const total = answer.length + padding;
    let sent = answer.length;
    const chunk = Buffer.alloc(1024 * 1024, 0x20);
    res.on('close', () => {
      hungUp(sent);
    });
    res.writeHead(200, JSON_TYPE).write(answer);
    // Writes for as long as the client reads: the client must be the one that stops.
    const pump = (): void => {
      while (!res.destroyed && sent < total) {
        const part = chunk.subarray(0, Math.min(chunk.length, total - sent));
        sent += part.length;
        if (!res.write(part)) {
          res.once('drain', pump);
          return;
        }
      }
      if (!res.destroyed) res.end();
    };
    pump();
  });
  const relayed = { ...target, url, certificate: null };
  // A deadline far beyond what reading 256 MiB takes: only the cap can end this call early.
  const padded = await client(0, 120_000).send(relayed, 'files.list', { types: ['NvRam'] });
  assert.equal(padded.hostUuid, target.uuid, 'a little padding: still the answer');
  await closed;

  padding = cap + 64 * 1024 * 1024;
  closed = new Promise<number>((resolve) => (hungUp = resolve));
  const error = await rejection(client(0, 120_000).send(relayed, 'files.list', { types: ['NvRam'] }));
  assert.ok(isAgentCallError(error));
  assert.equal(error.failure, 'bad_answer');
  assert.equal(error.message, `the answer is over ${cap} bytes`);
  const sent = await closed;
  assert.ok(sent < cap + 64 * 1024 * 1024, `the client hung up after ${sent} bytes, before the end`);
});

test('answers are asked for as they are (identity); an encoded one is refused unread, never inflated past the cap', async (t) => {
  const asked: (string | undefined)[] = [];
  // The agent's own answer, gzipped: the same signed bytes once inflated (as fetch would inflate them unasked).
  const url = await serving(
    t,
    createServer((req, res) => {
      asked.push(req.headers['accept-encoding']);
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        void fetchAgent(`${agent.url}${req.url ?? ''}`, { method: 'POST', body: Buffer.concat(chunks) })
          .then(async (answer) => {
            res.writeHead(200, { ...JSON_TYPE, 'content-encoding': 'gzip' }).end(gzipSync(await answer.text()));
          })
          .catch(() => res.destroy());
      });
    }),
  );
  const error = await rejection(
    client().send({ ...target, url, certificate: null }, 'files.list', { types: ['NvRam'] }),
  );
  assert.ok(isAgentCallError(error));
  assert.equal(error.failure, 'bad_answer');
  assert.equal(error.message, 'the answer is encoded (gzip): an agent never is');
  assert.deepEqual(asked, ['identity']);
});

test('a read answer never outgrows what a controller reads: a file too big for one answer fails alone', async (t) => {
  // Incompressible, 150 MiB: its base64 alone (200 MiB) would make an envelope past the 256 MiB a controller reads.
  const big = join(agent.setup.roots.NvRam, 'big_VARS.fd');
  const small = join(agent.setup.roots.NvRam, 'small_VARS.fd');
  const file = openSync(big, 'w');
  t.after(() => {
    rmSync(big, { force: true });
    rmSync(small, { force: true });
  });
  try {
    for (let i = 0; i < 150; i++) writeSync(file, randomBytes(1024 * 1024));
  } finally {
    closeSync(file);
  }
  writeFileSync(small, 'vars');
  const files = [big, small].map((path) => ({ type: 'NvRam' as const, path }));
  const answer = await client(0, 60_000).send(target, 'files.read', { files });
  assert.deepEqual(
    answer.results.map((r) => [r.status, 'error' in r ? r.error.message : undefined]),
    [
      ['failed', 'EFBIG (too large for one answer)'],
      ['read', undefined],
    ],
  );
});

test('a caller may cap an answer lower than 256 MiB (maxAnswerBytes): a fleet sync listing many hosts at once', async (t) => {
  const cap = 1024 * 1024;
  let padding = 64;
  const url = await rewritingRelay(t, (answer, res) => {
    res.writeHead(200, JSON_TYPE).end(answer + ' '.repeat(padding));
  });
  const relayed = { ...target, url, certificate: null };
  const capped = { maxAnswerBytes: cap };
  assert.equal((await client().send(relayed, 'files.list', { types: ['NvRam'] }, capped)).hostUuid, target.uuid);
  padding = 2 * cap;
  const error = await rejection(client().send(relayed, 'files.list', { types: ['NvRam'] }, capped));
  assert.ok(isAgentCallError(error));
  assert.equal(error.failure, 'bad_answer');
  assert.equal(error.message, `the answer is over ${cap} bytes`);
  // Without the cap the same answer is read whole.
  assert.equal((await client().send(relayed, 'files.list', { types: ['NvRam'] })).hostUuid, target.uuid);
});

test("an apply, stat or busy answer is read to its kind's cap: a few KiB a state, not 256 MiB", async (t) => {
  const cap = answerByteCap('files.apply', 1);
  assert.ok(cap < 256 * 1024, `one op's answer is capped at ${cap} bytes`);
  let padding = 64 * 1024;
  const url = await rewritingRelay(t, (answer, res) => {
    res.writeHead(200, JSON_TYPE).end(answer + ' '.repeat(padding));
  });
  const relayed = { ...target, url, certificate: null };
  const apply = () => {
    const path = join(agent.setup.roots.NvRam, `capped-${randomUUID()}_VARS.fd`);
    return client().send(relayed, 'files.apply', { ops: [writeOp('NvRam', path, Buffer.from('vars'))] });
  };
  assert.deepEqual(
    (await apply()).results.map((r) => r.status),
    ['written'],
    'padded but under its cap: still the answer',
  );
  // A listing's cap is still 256 MiB: the same padding past an apply's cap is read there.
  padding = 2 * cap;
  assert.equal((await client().send(relayed, 'files.list', { types: ['NvRam'] })).hostUuid, target.uuid);
  const error = await rejection(apply());
  assert.ok(isAgentCallError(error));
  assert.equal(error.failure, 'bad_answer');
  assert.equal(error.message, `the answer is over ${cap} bytes`);
});

test('an answer has one result per state asked about, each for that state: others are refused', async (t) => {
  let change = (payload: Record<string, unknown>): Record<string, unknown> => payload;
  const url = await rewritingRelay(t, (answer, res) => {
    res.writeHead(200, JSON_TYPE).end(resigned(answer, change));
  });
  const relayed = { ...target, url, certificate: null };
  const files = ['a_VARS.fd', 'b_VARS.fd'].map((name) => ({
    type: 'NvRam' as const,
    path: join(agent.setup.roots.NvRam, name),
  }));
  const stat = () => client().send(relayed, 'files.stat', { files });
  // Signed again as it was: accepted, so what refuses the others next is their results and nothing else.
  assert.deepEqual(
    (await stat()).results.map((r) => [r.path, r.status]),
    files.map((f) => [f.path, 'absent']),
  );
  type Results = { results: Record<string, unknown>[] };
  const refusals: [string, (payload: Results) => Results][] = [
    ['has 3 results for 2 states', (p) => ({ ...p, results: [...p.results, ...p.results.slice(0, 1)] })],
    ['has 1 results for 2 states', (p) => ({ ...p, results: p.results.slice(1) })],
    ["has result 0 for another state than the command's", (p) => ({ ...p, results: [...p.results].reverse() })],
    [
      "has result 1 for another state than the command's",
      (p) => ({ ...p, results: [p.results[0] ?? {}, { ...p.results[1], type: 'TpmState' }] }),
    ],
  ];
  for (const [message, edit] of refusals) {
    change = (payload) => edit(payload as unknown as Results);
    const error = await rejection(stat());
    assert.ok(isAgentCallError(error));
    assert.equal(error.failure, 'bad_answer');
    assert.equal(error.message, `the agent's answer ${message}`);
  }
});

test("an older agent's op message longer than 1,024 characters is clipped as it is read, never the whole answer refused", async (t) => {
  const long = `${'d/'.repeat(2000)}permall has other hard links`;
  const url = await rewritingRelay(t, (answer, res) => {
    res.writeHead(200, JSON_TYPE).end(
      resigned(answer, (payload) => ({
        ...payload,
        results: (payload['results'] as Record<string, unknown>[]).map((r) => ({
          ...r,
          status: 'failed',
          error: { code: 'not_regular_file', message: long },
        })),
      })),
    );
  });
  const path = join(agent.setup.roots.NvRam, `old-${randomUUID()}_VARS.fd`);
  const answer = await client().send({ ...target, url, certificate: null }, 'files.apply', {
    ops: [writeOp('NvRam', path, Buffer.from('vars'))],
  });
  const [result] = answer.results;
  assert.equal(result?.status, 'failed');
  assert.equal(result.error?.message, `${long.slice(0, 960)}…(truncated, ${long.length} chars)`);
});

test('a connection the agent closes at once says the likely cause: an untrusted controller key, or plain HTTP to HTTPS', async () => {
  const stranger = createAgentClient({ key: generateSigningKey(), timeoutMs: 2000, retries: 0, now: Date.now });
  try {
    const untrusted = await rejection(stranger.send(target, 'files.list', { types: ['NvRam'] }));
    assert.ok(isAgentCallError(untrusted));
    assert.equal(untrusted.failure, 'unreachable');
    assert.match(untrusted.message, /is this controller's public key in the agent's trustedKeys\? Its log says/);
  } finally {
    await stranger.close();
  }
  const plain = { ...target, url: target.url.replace(/^https:/, 'http:'), certificate: null };
  const error = await rejection(client().send(plain, 'files.list', { types: ['NvRam'] }));
  assert.ok(isAgentCallError(error));
  assert.equal(error.failure, 'unreachable');
  assert.match(
    error.message,
    /an agent that serves HTTPS closes a plain HTTP connection at once: does its URL need https/,
  );
});

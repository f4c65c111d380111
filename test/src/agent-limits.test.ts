// What an unauthenticated sender can make the agent hold, against real agent processes: the budget of body bytes in
// flight (503 overloaded past it, given back however a request ends), the connection limit, the header and request
// timeouts, the cheap envelope pre-parse, and refusals and log lines that repeat only a short prefix of input.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { removeSetup, setupAgent, startAgent, type AgentHandle } from './support/agent-process.js';
import { agentRequestOptions } from './support/tls.js';
import { ANSWER_WITHIN_HEADER } from '@hostfiles/shared';
import {
  clientOf,
  commandPayload,
  errorCode,
  openAnswer,
  post,
  send,
  signedBody,
  writeOp,
  type AgentClient,
  type CommandOptions,
  type Reply,
} from './support/commands.js';
import {
  chunk,
  eventually,
  health,
  openRaw,
  parseResponse,
  postHead,
  within,
  type RawConnection,
} from './support/raw-http.js';

/**
 * Plain HTTP on loopback: these limits guard what a sender without a key can make the agent hold, and under the default
 * mutual TLS such a sender never gets past the handshake; plain HTTP is the case where they are all that stands.
 */
const PLAIN = { listen: { host: '127.0.0.1', port: 0, tls: false } };

const KIB = 1024;
const APPLY = '/v1/files/apply';
const MAX_BODY = 256 * KIB;
/** Large bodies may fill 3/4 of it: three bodies of MAX_BODY. */
const BUDGET = 1024 * KIB;
/** These tests poll the agent's health over a new connection every 10 ms: no rate of new connections holds them. */
const ANY_RATE = { newConnectionsPerSecond: 1_000_000, newConnectionsBurst: 1_000_000 };

const inFlight = async (agent: AgentHandle): Promise<number> => (await health(agent.port)).bodyBytesInFlight ?? -1;

/** A connection that sent the head of a POST and `sent` bytes of its body, and holds. */
async function holding(agent: AgentHandle, declared: number | undefined, sent: Buffer): Promise<RawConnection> {
  const connection = await openRaw(agent.port);
  connection.socket.write(postHead(APPLY, declared));
  if (sent.length > 0) connection.socket.write(declared === undefined ? chunk(sent) : sent);
  return connection;
}

/** Starts an agent with `config` before the suite's tests (`use` is handed it) and stops it after them. */
function agentFor(config: Record<string, unknown>, use: (agent: AgentHandle) => void): void {
  let started: AgentHandle | undefined;
  before(async () => {
    started = await startAgent(setupAgent({ config }));
    use(started);
  });
  after(async () => {
    if (started === undefined) return;
    assert.equal(await started.stop(), 0);
    removeSetup(started.setup);
  });
}

/** A signed files.list for `agent`, as raw HTTP: sent on a connection, it proves that connection a controller's. */
function signedListFor(agent: AgentHandle): string {
  const payload = commandPayload('files.list', agent.setup.hostUuid, { types: ['TpmState'] });
  const body = signedBody(agent.setup.controllerKey, payload);
  return postHead('/v1/files/list', Buffer.byteLength(body)) + body;
}

/** Writes one small file through the agent with a signed command, and checks it was written. */
async function signedWrite(client: AgentClient, agent: AgentHandle, name: string): Promise<void> {
  const path = join(agent.setup.roots.TpmState, name);
  const answer = await send(client, 'files.apply', { ops: [writeOp('TpmState', path, 'state')] });
  assert.equal(answer.results[0]?.status, 'written');
}

/** The agent's log lines after the first `from`, once one of them is a `refused` line. */
async function refusedLine(agent: AgentHandle, from: number): Promise<string> {
  let line: string | undefined;
  await eventually(() => {
    line = agent.lines.slice(from).find((l) => l.includes('"event":"refused"'));
    return line !== undefined;
  }, 'a refused line in the log');
  return line ?? '';
}

describe('with a budget of body bytes in flight', () => {
  let agent: AgentHandle;
  let client: AgentClient;
  before(async () => {
    agent = await startAgent(
      setupAgent({ config: { ...PLAIN, maxBodyBytes: MAX_BODY, limits: { bodyBytesInFlight: BUDGET, ...ANY_RATE } } }),
    );
    client = await clientOf(agent);
  });
  after(async () => {
    assert.equal(await agent.stop(), 0);
    removeSetup(agent.setup);
  });

  // First: refusals of unsigned requests are logged at most 20 a second, and these read their log lines.
  test('a body of many short keys is refused at the first, briefly, in the answer and in the log', async () => {
    const manyKeys = `{${Array.from({ length: 22_000 }, (_, i) => `"k${i}":1`).join(',')}}`;
    assert.ok(manyKeys.length > 200 * KIB && manyKeys.length < MAX_BODY);
    const from = agent.lines.length;
    const reply = await post(agent.url, APPLY, manyKeys);
    assert.equal(reply.status, 400);
    assert.equal(errorCode(reply), 'bad_request');
    assert.ok(reply.text.length < KIB, `answer of ${reply.text.length} bytes`);
    assert.match(reply.text, /unknown key \\"k0\\"/);
    const line = await refusedLine(agent, from);
    assert.ok(line.length < KIB, `log line of ${line.length} bytes`);
  });

  test('unknown keys, keyIds, requestIds and paths are echoed only as a short, marked prefix', async () => {
    const long = 'x'.repeat(100 * KIB);
    const tpm = (name: string): string => join(agent.setup.roots.TpmState, name);
    const command = (body: Record<string, unknown>, extra: Record<string, unknown> = {}): string =>
      signedBody(client.key, { ...commandPayload('files.apply', client.hostUuid, body), ...extra });
    const entry = {
      path: 'p'.repeat(4000),
      content: Buffer.from('x').toString('base64'),
      sha256: '2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881',
    };
    const cases: [string, string, string][] = [
      ['an unknown envelope key', APPLY, `{"${long}":"x"}`],
      ['a long keyId', APPLY, JSON.stringify({ keyId: long, payload: 'AAAA', signature: 'x' })],
      ['an unknown command key', APPLY, command({ ops: [writeOp('TpmState', tpm('a'), 'x')] }, { [long]: 1 })],
      ['a long requestId', APPLY, command({ ops: [writeOp('TpmState', tpm('a'), 'x')] }, { requestId: long })],
      [
        'a long entry path, twice',
        APPLY,
        command({ ops: [{ op: 'writeDir', type: 'TpmState', path: tpm('d'), entries: [entry, entry] }] }),
      ],
      ['a long URL path', `/v1/${'y'.repeat(8 * KIB)}`, '{}'],
    ];
    for (const [what, path, body] of cases) {
      const from = agent.lines.length;
      const reply = await post(agent.url, path, body);
      assert.ok(reply.status >= 400 && reply.status < 500, `${what}: ${reply.status}`);
      assert.ok(reply.text.length < KIB, `${what}: an answer of ${reply.text.length} bytes`);
      assert.doesNotMatch(reply.text, /x{65}|y{65}|p{65}/, what);
      if (/unknown|path/.test(what)) assert.match(reply.text, /…/, `${what}: marked as cut`);
      // A route that does not exist is answered without a log line; every refusal has one.
      if (reply.status === 404) continue;
      const line = await refusedLine(agent, from);
      assert.ok(line.length < KIB, `${what}: a log line of ${line.length} bytes`);
    }
  });

  test('a body past the budget is refused 503 overloaded unread; small commands and health still pass; all comes back', async () => {
    const held = await Promise.all([1, 2, 3].map(() => holding(agent, MAX_BODY, Buffer.from('{"keyId":"'))));
    await eventually(async () => (await inFlight(agent)) === 3 * MAX_BODY, 'three bodies held');

    // Headers only: the answer comes without a byte of the body being sent.
    const refused = await holding(agent, MAX_BODY, Buffer.alloc(0));
    const answer = parseResponse(await within(refused.closed, 5000, 'a 503 and the connection closed'));
    assert.equal(answer.status, 503);
    assert.equal((JSON.parse(answer.body) as { error: { code: string } }).error.code, 'overloaded');
    assert.equal(answer.headers.get('retry-after'), '1');
    assert.equal(answer.headers.get('connection'), 'close');

    // Without Content-Length the body is counted as it arrives, and refused once it would pass the budget: up to
    // 64 KiB it is small, and fits; at 80 KiB it is large, and large bodies already hold all they may.
    const chunked = await holding(agent, undefined, Buffer.alloc(16 * KIB, 0x20));
    for (let i = 0; i < 4; i++) chunked.socket.write(chunk(Buffer.alloc(16 * KIB, 0x20)));
    const cut = parseResponse(await within(chunked.closed, 5000, 'a chunked body refused'));
    assert.equal(cut.status, 503);

    // A quarter of the budget stays for small bodies: the controller's everyday commands get through.
    await signedWrite(client, agent, 'during');
    assert.equal(await inFlight(agent), 3 * MAX_BODY, 'refused and finished requests hold nothing');

    for (const connection of held) connection.socket.destroy();
    await eventually(async () => (await inFlight(agent)) === 0, 'the budget given back');
    await signedWrite(client, agent, 'after');
  });

  test('connections cut mid-body, reset or half-closed, give back what they held', async () => {
    const held = await Promise.all(
      Array.from({ length: 24 }, (_, i) => holding(agent, i % 2 === 0 ? 8 * KIB : undefined, Buffer.alloc(KIB, 0x20))),
    );
    // A declared body takes its size; one sent chunked takes 16 KiB to start with.
    await eventually(async () => (await inFlight(agent)) === 12 * 8 * KIB + 12 * 16 * KIB, 'the bodies held', 10_000);
    for (const [i, connection] of held.entries()) {
      if (i % 3 === 0) connection.socket.resetAndDestroy();
      else if (i % 3 === 1) connection.socket.end();
      else connection.socket.destroy();
    }
    await eventually(async () => (await inFlight(agent)) === 0, 'the budget given back');
  });

  test('a chunked body that grows is counted as the one buffer it holds, whatever it outgrew', async () => {
    const grow = await holding(agent, undefined, Buffer.alloc(16 * KIB, 0x20));
    await eventually(async () => (await inFlight(agent)) === 16 * KIB, 'its first buffer');
    // One byte past it: a buffer of 32 KiB, the first one given back once copied (to the pool and the budget).
    grow.socket.write(chunk(Buffer.alloc(1, 0x20)));
    await eventually(async () => (await inFlight(agent)) === 32 * KIB, 'its second buffer only');
    grow.socket.write(chunk(Buffer.alloc(16 * KIB, 0x20)));
    await eventually(async () => (await inFlight(agent)) === 64 * KIB, 'its third buffer only');
    grow.socket.destroy();
    await eventually(async () => (await inFlight(agent)) === 0, 'the budget given back');
  });
});

describe('with a connection limit and short timeouts', () => {
  let agent: AgentHandle;
  before(async () => {
    const limits = { maxConnections: 4, headersTimeoutMs: 300, requestTimeoutMs: 1000, ...ANY_RATE };
    agent = await startAgent(setupAgent({ config: { ...PLAIN, maxBodyBytes: MAX_BODY, limits } }));
  });
  after(async () => {
    assert.equal(await agent.stop(), 0);
    removeSetup(agent.setup);
  });

  const HEALTH = 'GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';
  /** A signed files.list: the connection that carries it is a controller's from then on. */
  const signedList = (): string => {
    const payload = commandPayload('files.list', agent.setup.hostUuid, { types: ['TpmState'] });
    const body = signedBody(agent.setup.controllerKey, payload);
    return postHead('/v1/files/list', Buffer.byteLength(body)) + body;
  };
  const answers = (connection: RawConnection): number => connection.received().split('HTTP/1.1 200 ').length - 1;
  /** Sends `request` on `connection` and waits for its 200 answer; the connection is kept alive. */
  const ask = async (connection: RawConnection, request: string, what: string): Promise<RawConnection> => {
    const before = answers(connection);
    connection.socket.write(request);
    await eventually(() => answers(connection) > before, what);
    return connection;
  };
  const fresh = async (request: string, what: string): Promise<RawConnection> =>
    ask(await openRaw(agent.port), request, what);
  const logged = (event: string): boolean => agent.lines.some((l) => l.includes(`"event":"${event}"`));

  test('past the limit a stranger gives up its place to a new connection, a controller never does; when all are controllers, the new one is closed unanswered', async () => {
    const controllers = [await fresh(signedList(), 'a first command'), await fresh(signedList(), 'a second')];
    const oldest = await fresh(HEALTH, 'a first stranger');
    const newer = await fresh(HEALTH, 'a second');

    // Full (4): a new stranger takes the place of the oldest one.
    const third = await fresh(HEALTH, 'a new stranger answered, the limit reached');
    await within(oldest.closed, 5000, 'the oldest stranger closed');
    assert.equal(newer.socket.destroyed, false, 'the newer stranger kept');
    await eventually(() => logged('connections_replaced'), 'a replaced line');
    // A controller's new connection gets in too, in the next stranger's place.
    const another = await fresh(signedList(), "a controller's new connection answered");
    await within(newer.closed, 5000, 'the next stranger closed');
    for (const connection of controllers) await ask(connection, signedList(), "a controller's connection kept");

    // Now every place a controller's: a new connection is the one closed.
    await ask(third, signedList(), 'the last stranger proves to be a controller');
    const refused = await openRaw(agent.port);
    refused.socket.write('GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    assert.equal(await within(refused.closed, 5000, 'the new connection closed'), '', 'no answer past the limit');
    await eventually(() => logged('connections_dropped'), 'a dropped line');

    controllers[0]?.socket.destroy();
    await eventually(
      async () =>
        await health(agent.port).then(
          () => true,
          () => false,
        ),
      'a place free again',
    );
    for (const connection of [...controllers, third, another]) connection.socket.destroy();
  });

  test('headers that never end, and a body that never ends, are dropped at their timeouts and hold nothing', async () => {
    const slowHeaders = await openRaw(agent.port);
    slowHeaders.socket.write('POST /v1/files/apply HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    await within(slowHeaders.closed, 5000, 'slow headers dropped');

    const slowBody = await holding(agent, 64 * KIB, Buffer.from('{"keyId":'));
    await eventually(async () => (await inFlight(agent)) === 64 * KIB, 'the body held');
    await within(slowBody.closed, 5000, 'a slow body dropped');
    await eventually(async () => (await inFlight(agent)) === 0, 'the budget given back');
  });
});

describe('with a rate of new connections per address', () => {
  let agent: AgentHandle;
  before(async () => {
    // Three at once, then one in 1,000 s: nothing refills during the test.
    const limits = { newConnectionsPerSecond: 0.001, newConnectionsBurst: 3 };
    agent = await startAgent(setupAgent({ config: { ...PLAIN, limits } }));
  });
  after(async () => {
    assert.equal(await agent.stop(), 0);
    removeSetup(agent.setup);
  });

  /** A health request on a new connection from `from`; its answer, '' when it was closed unanswered. */
  const askFrom = async (from: string): Promise<string> => {
    const connection = await openRaw(agent.port, from);
    connection.socket.write('GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    return within(connection.closed, 5000, `an answer or a close for ${from}`);
  };

  test('past its burst an address’s new connections are closed unanswered; another address is not held back', async () => {
    for (let i = 0; i < 3; i++) assert.equal(parseResponse(await askFrom('127.0.0.2')).status, 200);
    assert.equal(await askFrom('127.0.0.2'), '', 'the fourth connection of 127.0.0.2: closed, nothing read or sent');
    assert.equal(await askFrom('127.0.0.2'), '');
    assert.equal(parseResponse(await askFrom('127.0.0.3')).status, 200, 'a bucket of its own');
    await eventually(
      () => agent.lines.some((l) => l.includes('"event":"connections_rate_limited"')),
      'a rate-limited line',
    );
  });
});

describe('with a connection limit, commands that fail a check', () => {
  let agent: AgentHandle;
  agentFor({ ...PLAIN, limits: { maxConnections: 3, ...ANY_RATE } }, (started) => (agent = started));

  /** A kept-alive connection that sent a signed files.list built with `options` and got `status`. */
  const sent = async (hostUuid: string, status: number, options: CommandOptions = {}): Promise<RawConnection> => {
    const payload = commandPayload('files.list', hostUuid, { types: ['TpmState'] }, options);
    const body = signedBody(agent.setup.controllerKey, payload);
    const connection = await openRaw(agent.port);
    connection.socket.write(postHead('/v1/files/list', Buffer.byteLength(body)) + body);
    await eventually(() => connection.received().startsWith(`HTTP/1.1 ${status} `), `a ${status} answer`);
    return connection;
  };

  test("a stranger's refused envelope closes its connection (a bad signature, another host, expired); what it pipelined behind is refused unverified", async () => {
    // A signature that cannot verify, then more of them and a valid write, pipelined on one connection: the first is
    // verified and refused, and the connection closed; what came behind it is refused unread and unverified (node
    // hands every request of a read to the agent at once). Else one connection could make the agent verify
    // signatures as fast as it sends them (~0.2 ms each), past the pace of new connections per address.
    const payload = commandPayload('files.list', agent.setup.hostUuid, { types: ['TpmState'] });
    const good = JSON.parse(signedBody(agent.setup.controllerKey, payload)) as { signature: string };
    const forged = JSON.stringify({ ...good, signature: Buffer.alloc(64, 7).toString('base64') });
    const target = join(agent.setup.roots.TpmState, `pipelined-${randomUUID()}`);
    const write = signedBody(
      agent.setup.controllerKey,
      commandPayload('files.apply', agent.setup.hostUuid, { ops: [writeOp('TpmState', target, 'x')] }),
    );
    const from = agent.lines.length;
    const pipelined = await openRaw(agent.port);
    const forgedRequest = postHead('/v1/files/list', Buffer.byteLength(forged)) + forged;
    pipelined.socket.write(forgedRequest.repeat(5) + postHead(APPLY, Buffer.byteLength(write)) + write);
    const answered = await within(pipelined.closed, 5000, "the forged envelope's connection closed");
    assert.match(answered, /^HTTP\/1\.1 401 /);
    assert.match(answered, /\r\nconnection: close\r\n/i);
    assert.equal(answered.match(/HTTP\/1\.1 /g)?.length, 1, 'nothing behind it answered');
    const refusals = (code: string) =>
      agent.lines.slice(from).filter((l) => l.includes('"refused"') && l.includes(`"code":"${code}"`));
    await eventually(() => refusals('bad_request').length === 5, 'the five pipelined behind it refused');
    assert.equal(refusals('bad_signature').length, 1, 'one signature verified: the first');
    assert.ok(refusals('bad_request').every((l) => l.includes('pipelined')));
    assert.equal(existsSync(target), false, 'the valid write pipelined behind it did not run');
    // Signed by the controller, but for another host or out of its time: refused and closed alike.
    const wrongHost = await sent(randomUUID(), 403);
    const expired = await sent(agent.setup.hostUuid, 401, { issuedAt: Date.now() - 3_600_000 });
    await within(wrongHost.closed, 5000, "the wrong host's connection closed");
    await within(expired.closed, 5000, "the expired command's connection closed");
    // A proven connection is not closed by a refusal: a command refused at check 9 (a path outside the roots)
    // after a valid one, on one connection, and the connection still carries the next.
    const valid = await sent(agent.setup.hostUuid, 200);
    const outside = signedBody(
      agent.setup.controllerKey,
      commandPayload('files.apply', agent.setup.hostUuid, { ops: [writeOp('TpmState', '/etc/passwd', 'x')] }),
    );
    let before = valid.received().length;
    valid.socket.write(postHead(APPLY, Buffer.byteLength(outside)) + outside);
    // Its whole head, before asking what it says.
    await eventually(() => /^HTTP\/1\.1 403 [^]*\r\n\r\n/.test(valid.received().slice(before)), 'outside_root refused');
    assert.doesNotMatch(valid.received().slice(before), /\r\nconnection: close\r\n/i);
    before = valid.received().length;
    valid.socket.write(signedListFor(agent));
    await eventually(() => valid.received().slice(before).startsWith('HTTP/1.1 200 '), 'the proven connection kept');
    // And it keeps its place: full, a new connection takes a stranger's, never the proven one's.
    const next = await openRaw(agent.port);
    const last = await openRaw(agent.port);
    const more = await openRaw(agent.port);
    await within(next.closed, 5000, 'the oldest stranger closed, not the proven connection');
    before = valid.received().length;
    valid.socket.write(signedListFor(agent));
    await eventually(() => valid.received().slice(before).startsWith('HTTP/1.1 200 '), 'still its place');
    for (const connection of [valid, last, more]) connection.socket.destroy();
  });
});

describe('with a connection limit, a retry on a new connection', () => {
  let agent: AgentHandle;
  agentFor({ ...PLAIN, limits: { maxConnections: 2, ...ANY_RATE } }, (started) => (agent = started));

  test("earns its place as its first attempt's did: the controller's retry is not a stranger's", async () => {
    const request = signedListFor(agent);
    const first = await openRaw(agent.port);
    first.socket.write(request);
    await eventually(() => first.received().startsWith('HTTP/1.1 200 '), 'the first attempt answered');
    // The same bytes again on a new connection, as the controller resends after a timeout.
    const retry = await openRaw(agent.port);
    retry.socket.write(request);
    await eventually(() => retry.received().startsWith('HTTP/1.1 200 '), 'the retry answered');
    await eventually(() => agent.lines.some((l) => l.includes('"retry":true')), 'the retry logged as one');
    // Both places a controller's: a stranger's new connection is the one closed.
    const stranger = await openRaw(agent.port);
    stranger.socket.write('GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    assert.equal(await within(stranger.closed, 5000, 'the stranger closed'), '', 'no answer: every place proven');
    for (const connection of [first, retry]) connection.socket.destroy();
  });
});

describe("with a limit of strangers' connections per address", () => {
  let agent: AgentHandle;
  agentFor({ ...PLAIN, limits: { connectionsPerAddress: 2, ...ANY_RATE } }, (started) => (agent = started));

  /** A connection from `from` that sent `request` and got its 200 answer, kept alive. */
  const keptFrom = async (from: string, request: string): Promise<RawConnection> => {
    const connection = await openRaw(agent.port, from);
    connection.socket.write(request);
    await eventually(() => connection.received().includes('HTTP/1.1 200 '), `a kept-alive answer for ${from}`);
    return connection;
  };
  const HEALTH = 'GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';
  const signedList = (): string => {
    const payload = commandPayload('files.list', agent.setup.hostUuid, { types: ['TpmState'] });
    const body = signedBody(agent.setup.controllerKey, payload);
    return postHead('/v1/files/list', Buffer.byteLength(body)) + body;
  };

  test("an address holding all its strangers' places gives up its oldest for its new connection; a controller's from it is never given up, nor counted; another address is not touched", async () => {
    const first = await keptFrom('127.0.0.4', HEALTH);
    const second = await keptFrom('127.0.0.4', HEALTH);
    const elsewhere = await keptFrom('127.0.0.5', HEALTH);
    // A controller behind the same address: its new connection takes the oldest stranger's place, then proves itself.
    const controller = await keptFrom('127.0.0.4', signedList());
    await within(first.closed, 5000, "the address's oldest stranger closed");
    await eventually(() => agent.lines.some((l) => l.includes('"event":"connections_address_limited"')), 'a line');
    // The controller's connection does not count: one more stranger fits, the next takes the oldest's place again.
    const third = await keptFrom('127.0.0.4', HEALTH);
    const answered = second.received().length;
    second.socket.write(HEALTH);
    await eventually(() => second.received().length > answered, 'the second stranger still answered: not counted over');
    const fourth = await keptFrom('127.0.0.4', HEALTH);
    await within(second.closed, 5000, 'the next oldest stranger closed');
    const before = controller.received().split('HTTP/1.1 200 ').length;
    controller.socket.write(signedList());
    await eventually(() => controller.received().split('HTTP/1.1 200 ').length > before, "the controller's kept");
    assert.equal(elsewhere.socket.destroyed, false, 'another address keeps its place');
    for (const connection of [controller, third, fourth, elsewhere]) connection.socket.destroy();
  });
});

describe('with a connection limit, over mutual TLS', () => {
  let agent: AgentHandle;
  agentFor({ limits: { maxConnections: 2, ...ANY_RATE } }, (started) => (agent = started));

  test("a controller's connection is its own from the end of its handshake: strangers give up their places, it does not", async () => {
    const options = agentRequestOptions(agent.url) as ConnectionOptions;
    const controller = tlsConnect({ port: agent.port, host: '127.0.0.1', ...options });
    controller.on('error', () => undefined);
    let received = '';
    controller.on('data', (data: Buffer) => (received += data.toString('latin1')));
    const health = async (what: string): Promise<void> => {
      const before = received.split('"status":"ok"').length;
      controller.write('GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      await eventually(() => received.split('"status":"ok"').length > before, what);
    };
    // Unsigned: an answer only says that the agent has finished the handshake (TLS 1.3 ends it on the client first).
    await health('the handshake done on both sides');
    // Strangers that never even start a handshake: each new one takes the place of the one before.
    const first = await openRaw(agent.port);
    const second = await openRaw(agent.port);
    await within(first.closed, 5000, 'the first stranger closed');
    const third = await openRaw(agent.port);
    await within(second.closed, 5000, 'the second stranger closed');
    await health("the controller's connection kept");
    controller.destroy();
    third.socket.destroy();
  });
});

describe('a listing nobody waits for, or one out of time', () => {
  let agent: AgentHandle;
  let client: AgentClient;
  before(async () => {
    agent = await startAgent(setupAgent({ config: { ...PLAIN, limits: ANY_RATE } }));
    client = await clientOf(agent);
  });
  after(async () => {
    assert.equal(await agent.stop(), 0);
    removeSetup(agent.setup);
  });

  /** The `ms` of the agent's request line for `requestId`, once it is logged. */
  const msOf = async (requestId: string): Promise<number> => {
    let ms = -1;
    await eventually(
      () => {
        const line = agent.lines.find((l) => l.includes('"event":"request"') && l.includes(requestId));
        ms = line === undefined ? -1 : (JSON.parse(line) as { ms: number }).ms;
        return line !== undefined;
      },
      `the request line of ${requestId}`,
      120_000,
    );
    return ms;
  };

  test('stops hashing once its connection closes: the roots’ owner’s big files are not hashed to their end for no one', async () => {
    const GIB = 1024 ** 3;
    const { NvRam } = agent.setup.roots;
    // Ten sparse 1 GiB files, as the QEMU user can make in a moment: a listing hashes them all, seconds each.
    for (let i = 0; i < 10; i++) {
      const path = join(NvRam, `big-${i}`);
      closeSync(openSync(path, 'w'));
      truncateSync(path, GIB);
    }
    const payload = commandPayload('files.list', agent.setup.hostUuid, { types: ['NvRam'] });
    const body = signedBody(agent.setup.controllerKey, payload);
    const connection = await openRaw(agent.port);
    connection.socket.write(postHead('/v1/files/list', Buffer.byteLength(body)) + body);
    const pid = agent.process.pid ?? 0;
    const hashingOne = (): boolean =>
      readdirSync(`/proc/${pid}/fd`).some((fd) => {
        try {
          return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith(join(NvRam, 'big-'));
        } catch {
          return false;
        }
      });
    await eventually(hashingOne, 'the agent hashing a first file', 30_000);
    connection.socket.destroy();
    const listed = await msOf(String(payload['requestId']));

    // What hashing one of them takes here: the listing left after the file it was in, not after all ten.
    const one = await send(client, 'files.stat', { files: [{ type: 'NvRam', path: join(NvRam, 'big-0') }] });
    assert.equal(one.results[0]?.status, 'present');
    const stat = await msOf(one.requestId);
    assert.ok(listed < 4 * stat, `the abandoned listing took ${listed} ms, one file's hash ${stat} ms`);
  });

  test('answers within the time its controller gives it: a root of big files is listed in part, truncated, in time', async () => {
    const GIB = 1024 ** 3;
    const { NvRam } = agent.setup.roots;
    writeFileSync(join(NvRam, 'a_VARS.fd'), 'vars');
    // Named to come right after it (the other test's files come later, and may be hashed fast from the page cache).
    for (let i = 0; i < 10; i++) {
      const path = join(NvRam, `a_late-${i}`);
      closeSync(openSync(path, 'w'));
      truncateSync(path, GIB);
    }
    const list = (headers: Record<string, string>): Promise<Reply> =>
      post(
        agent.url,
        '/v1/files/list',
        signedBody(client.key, commandPayload('files.list', client.hostUuid, { types: ['NvRam'] })),
        headers,
      );
    const answer = openAnswer(await list({ [ANSWER_WITHIN_HEADER]: '300' }), 'files.list', client.agentPublicKey);
    assert.equal(answer.truncated, true);
    assert.deepEqual(
      answer.results.map((r) => r.path),
      [join(NvRam, 'a_VARS.fd')],
      'the small file first in order; each big one takes seconds',
    );
    await eventually(
      () => agent.lines.some((l) => l.includes('"listing_truncated"') && l.includes('"reason":"time"')),
      'listing_truncated logged with its reason',
    );

    for (const bad of ['0', '-1', '1.5', 'soon', '86400001', '0100']) {
      const refused = await list({ [ANSWER_WITHIN_HEADER]: bad });
      assert.deepEqual([refused.status, errorCode(refused)], [400, 'bad_request'], bad);
    }
  });
});

// Every row of the agent's check table, against a real agent process: the refusal, its code, and nothing applied.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateSigningKey, signEnvelope, writeDirOp, COMMAND_CONTEXT, ANSWER_CONTEXT } from '@hostfiles/shared';
import { removeSetup, setupAgent, startAgent, type AgentHandle } from './support/agent-process.js';
import { agentRequestOptions } from './support/tls.js';
import {
  agentInfo,
  commandPayload,
  deleteOp,
  errorCode,
  openAnswer,
  post,
  signedBody,
  writeOp,
  type AgentClient,
  type CommandOptions,
} from './support/commands.js';

const APPLY = '/v1/files/apply';
let agent: AgentHandle;
let client: AgentClient;

before(async () => {
  agent = await startAgent(setupAgent({ config: { maxBodyBytes: 64 * 1024 } }));
  const info = await agentInfo(agent.url);
  client = {
    url: agent.url,
    hostUuid: agent.setup.hostUuid,
    key: agent.setup.controllerKey,
    agentPublicKey: info.publicKey,
  };
});
after(async () => {
  assert.equal(await agent.stop(), 0);
  removeSetup(agent.setup);
});

const tpm = (name: string): string => join(agent.setup.roots.TpmState, name);
const nvram = (name: string): string => join(agent.setup.roots.NvRam, name);

/** A batch that would leave a visible mark: a file written inside the root. */
function markPayload(name: string, options: CommandOptions = {}): Record<string, unknown> {
  return commandPayload('files.apply', client.hostUuid, { ops: [writeOp('TpmState', tpm(name), 'mark')] }, options);
}

function assertNothingApplied(name: string): void {
  assert.equal(existsSync(tpm(name)), false, `${name} must not have been written`);
  assert.deepEqual(readdirSync(agent.setup.outside), [], 'nothing may appear outside the roots');
}

describe('check 1: body size', () => {
  test('a declared Content-Length over the limit is refused before reading', async () => {
    const reply = await post(client.url, APPLY, 'x', { 'content-length': '1' });
    assert.equal(reply.status, 400); // a truthful small body passes check 1 and fails as a bad envelope
    const big = await rawPost(APPLY, { 'content-length': String(10 * 1024 * 1024) }, Buffer.alloc(16));
    assert.equal(big.status, 413);
    assert.equal(big.code, 'too_large');
  });

  test('a chunked body without Content-Length is cut off at the limit', async () => {
    const body = signedBody(client.key, {
      ...markPayload('big'),
      ops: [writeOp('TpmState', tpm('big'), Buffer.alloc(100 * 1024, 7))],
    });
    const reply = await rawPost(APPLY, { 'transfer-encoding': 'chunked' }, Buffer.from(body));
    assert.equal(reply.status, 413);
    assert.equal(reply.code, 'too_large');
    assertNothingApplied('big');
  });
});

describe('check 2: envelope shape', () => {
  test('not JSON, a duplicate key, an unknown field, a missing field: bad_request', async () => {
    const good = JSON.parse(signedBody(client.key, markPayload('env'))) as Record<string, string>;
    const bodies = [
      'not json',
      `{"keyId":"${good['keyId'] ?? ''}","keyId":"${good['keyId'] ?? ''}","payload":"${good['payload'] ?? ''}","signature":"${good['signature'] ?? ''}"}`,
      JSON.stringify({ ...good, extra: 1 }),
      JSON.stringify({ keyId: good['keyId'], payload: good['payload'] }),
      JSON.stringify({ ...good, signature: 'not base64!' }),
    ];
    for (const body of bodies) {
      const reply = await post(client.url, APPLY, body);
      assert.equal(reply.status, 400, body.slice(0, 60));
      assert.equal(errorCode(reply), 'bad_request');
    }
    assertNothingApplied('env');
  });
});

describe('checks 3 and 4: key and signature', () => {
  test('a key the agent does not trust: unknown_key', async () => {
    const reply = await post(client.url, APPLY, signedBody(generateSigningKey(), markPayload('k')));
    assert.equal(reply.status, 401);
    assert.equal(errorCode(reply), 'unknown_key');
    assertNothingApplied('k');
  });

  test('a signature that does not verify: bad_signature', async () => {
    const envelope = signEnvelope(COMMAND_CONTEXT, markPayload('s'), client.key);
    const other = signEnvelope(COMMAND_CONTEXT, markPayload('s2'), client.key);
    const answerSigned = signEnvelope(ANSWER_CONTEXT, markPayload('s3'), client.key);
    for (const body of [
      { ...envelope, signature: other.signature },
      { ...envelope, payload: other.payload },
      answerSigned, // right key, wrong context
    ]) {
      const reply = await post(client.url, APPLY, JSON.stringify(body));
      assert.equal(reply.status, 401);
      assert.equal(errorCode(reply), 'bad_signature');
    }
    assertNothingApplied('s');
    assertNothingApplied('s2');
    assertNothingApplied('s3');
  });
});

describe('check 5: the command', () => {
  test('an invalid command, an unknown field, or another kind: bad_request', async () => {
    const payloads = [
      { ...markPayload('c1'), extra: true },
      { ...markPayload('c2'), ops: [{ ...writeOp('TpmState', tpm('c2'), 'x'), mode: 777 }] },
      { ...markPayload('c3'), issuedAt: 1.5 },
      commandPayload('files.list', client.hostUuid, { types: ['TpmState'] }),
      { ...markPayload('c4'), ops: [] },
    ];
    for (const payload of payloads) {
      const reply = await post(client.url, APPLY, signedBody(client.key, payload));
      assert.equal(reply.status, 400, JSON.stringify(payload).slice(0, 80));
      assert.equal(errorCode(reply), 'bad_request');
    }
    for (const name of ['c1', 'c2', 'c3', 'c4']) assertNothingApplied(name);
  });

  test('a payload with a duplicate key is refused even though it is signed', async () => {
    const text = JSON.stringify(markPayload('dup')).replace('{', '{"hostUuid":"00000000-0000-4000-8000-000000000000",');
    const reply = await post(client.url, APPLY, signedBody(client.key, Buffer.from(text)));
    assert.equal(reply.status, 400);
    assert.equal(errorCode(reply), 'bad_request');
    assertNothingApplied('dup');
  });
});

test('check 6: a command for another host: wrong_host', async () => {
  const payload = commandPayload('files.apply', '7d0c3b1e-5b8a-4c39-9d2f-1f6f0e2a4b11', {
    ops: [writeOp('TpmState', tpm('h'), 'x')],
  });
  const reply = await post(client.url, APPLY, signedBody(client.key, payload));
  assert.equal(reply.status, 403);
  assert.equal(errorCode(reply), 'wrong_host');
  assertNothingApplied('h');
});

test('check 7: issued in the future, expired, or valid too long: expired', async () => {
  const now = Date.now();
  const cases = [
    { issuedAt: now + 120_000, expiresAt: now + 180_000 },
    { issuedAt: now - 200_000, expiresAt: now - 100_000 },
    { issuedAt: now, expiresAt: now + 300_001 },
    { issuedAt: now, expiresAt: now },
  ];
  for (const [index, times] of cases.entries()) {
    const reply = await post(client.url, APPLY, signedBody(client.key, markPayload(`t${index}`, times)));
    assert.equal(reply.status, 401, JSON.stringify(times));
    assert.equal(errorCode(reply), 'expired');
    assertNothingApplied(`t${index}`);
  }
});

test('check 8: the same requestId with other bytes is replayed; the same bytes are a retry', async () => {
  const first = markPayload('r1');
  const body = signedBody(client.key, first);
  const reply = await post(client.url, APPLY, body);
  const answer = openAnswer(reply, 'files.apply', client.agentPublicKey);
  assert.equal(answer.results[0]?.status, 'written');
  const other = { ...first, ops: [writeOp('TpmState', tpm('r2'), 'other')] };
  const replayed = await post(client.url, APPLY, signedBody(client.key, other));
  assert.equal(replayed.status, 409);
  assert.equal(errorCode(replayed), 'replayed');
  assertNothingApplied('r2');
  // A retry answers the stored answer byte for byte and applies nothing again.
  const overwrite = commandPayload('files.apply', client.hostUuid, { ops: [writeOp('TpmState', tpm('r1'), 'newer')] });
  openAnswer(await post(client.url, APPLY, signedBody(client.key, overwrite)), 'files.apply', client.agentPublicKey);
  const retry = await post(client.url, APPLY, body);
  assert.equal(retry.status, 200);
  assert.equal(retry.text, reply.text);
  assert.equal(readFileSync(tpm('r1'), 'utf8'), 'newer');
});

describe('check 9: paths and content', () => {
  const root = (): string => agent.setup.roots.TpmState;
  const bad = (): string[] => [
    `${root()}/../outside/x`,
    `${root()}/a/../../outside/x`,
    `${root()}/./a`,
    `${root()}//a`,
    `${root()}/a/`,
    `${root()}/a\0b`,
    'relative/path',
    root(),
    `${root()}x/a`,
    nvram('in-the-other-root'),
    `${root()}/vm/.hostfiles-tmp-state-0123`,
    join(agent.setup.outside, 'x'),
  ];

  test('every bad path is refused with outside_root, and the good op beside it is not applied', async () => {
    for (const path of bad()) {
      const payload = commandPayload('files.apply', client.hostUuid, {
        ops: [writeOp('TpmState', tpm('good'), 'g'), writeOp('TpmState', path, 'evil')],
      });
      const reply = await post(client.url, APPLY, signedBody(client.key, payload));
      assert.equal(reply.status, 403, JSON.stringify(path));
      assert.equal(errorCode(reply), 'outside_root');
      assertNothingApplied('good');
      const del = commandPayload('files.apply', client.hostUuid, { ops: [deleteOp('TpmState', path)] });
      assert.equal(errorCode(await post(client.url, APPLY, signedBody(client.key, del))), 'outside_root');
      const read = commandPayload('files.read', client.hostUuid, { files: [{ type: 'TpmState', path }] });
      assert.equal(errorCode(await post(client.url, '/v1/files/read', signedBody(client.key, read))), 'outside_root');
      const stat = commandPayload('files.stat', client.hostUuid, { files: [{ type: 'TpmState', path }] });
      assert.equal(errorCode(await post(client.url, '/v1/files/stat', signedBody(client.key, stat))), 'outside_root');
      const dir = commandPayload('files.apply', client.hostUuid, {
        ops: [writeDirOp('TpmState', path, [{ path: 'f', content: Buffer.from('evil') }])],
      });
      assert.equal(errorCode(await post(client.url, APPLY, signedBody(client.key, dir))), 'outside_root');
    }
    assert.ok(existsSync(agent.setup.roots.NvRam), 'the other root is still there');
    assert.deepEqual(readdirSync(agent.setup.roots.NvRam), []);
  });

  test('an entry path with a line break is refused with outside_root: a state never needs one', async () => {
    for (const entryPath of ['tpm2/a\nb', 'tpm2/a\rb']) {
      const payload = commandPayload('files.apply', client.hostUuid, {
        ops: [
          writeOp('TpmState', tpm('nl-good'), 'g'),
          writeDirOp('TpmState', tpm('nl'), [{ path: entryPath, content: Buffer.from('x') }]),
        ],
      });
      const reply = await post(client.url, APPLY, signedBody(client.key, payload));
      assert.equal(reply.status, 403, JSON.stringify(entryPath));
      assert.equal(errorCode(reply), 'outside_root');
      assertNothingApplied('nl-good');
      assertNothingApplied('nl');
    }
  });

  test('a sha256 that does not match the content: bad_request', async () => {
    const op = { ...writeOp('TpmState', tpm('sha'), 'content'), sha256: '0'.repeat(64) };
    const payload = commandPayload('files.apply', client.hostUuid, {
      ops: [writeOp('TpmState', tpm('sha-ok'), 'ok'), op],
    });
    const reply = await post(client.url, APPLY, signedBody(client.key, payload));
    assert.equal(reply.status, 400);
    assert.equal(errorCode(reply), 'bad_request');
    assertNothingApplied('sha');
    assertNothingApplied('sha-ok');
  });

  test('a refused requestId may be used again once fixed: nothing was recorded', async () => {
    const requestId = '9b2f7c1a-4d3e-4f5a-8b6c-7d8e9f0a1b2c';
    const badPayload = commandPayload(
      'files.apply',
      client.hostUuid,
      { ops: [writeOp('TpmState', '/etc/x', 'x')] },
      { requestId },
    );
    assert.equal(errorCode(await post(client.url, APPLY, signedBody(client.key, badPayload))), 'outside_root');
    const goodPayload = commandPayload(
      'files.apply',
      client.hostUuid,
      { ops: [writeOp('TpmState', tpm('fixed'), 'x')] },
      { requestId },
    );
    const answer = openAnswer(
      await post(client.url, APPLY, signedBody(client.key, goodPayload)),
      'files.apply',
      client.agentPublicKey,
    );
    assert.equal(answer.results[0]?.status, 'written');
  });
});

test('the order of the checks: the first failure answers', async () => {
  // Unknown key beats a bad command; wrong host beats expiry; replay beats a bad path.
  const stranger = generateSigningKey();
  const invalid = { ...markPayload('o1'), extra: 1 };
  assert.equal(errorCode(await post(client.url, APPLY, signedBody(stranger, invalid))), 'unknown_key');
  const old = commandPayload(
    'files.apply',
    '7d0c3b1e-5b8a-4c39-9d2f-1f6f0e2a4b11',
    { ops: [writeOp('TpmState', tpm('o2'), 'x')] },
    { issuedAt: 1, expiresAt: 2 },
  );
  assert.equal(errorCode(await post(client.url, APPLY, signedBody(client.key, old))), 'wrong_host');
  const first = markPayload('o3');
  openAnswer(await post(client.url, APPLY, signedBody(client.key, first)), 'files.apply', client.agentPublicKey);
  const replayOutside = { ...first, ops: [writeOp('TpmState', '/etc/passwd', 'x')] };
  assert.equal(errorCode(await post(client.url, APPLY, signedBody(client.key, replayOutside))), 'replayed');
});

/** A request whose headers the test controls fully (fetch would fix Content-Length itself). */
function rawPost(
  path: string,
  headers: Record<string, string>,
  body: Buffer,
): Promise<{ status: number; code: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${client.url}${path}`,
      {
        ...agentRequestOptions(client.url),
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
      },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => {
          let code: string | undefined;
          try {
            code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
          } catch {
            code = undefined;
          }
          resolve({ status: res.statusCode ?? 0, code });
        });
      },
    );
    // An error after the answer arrived changes nothing (the promise is settled); one before it fails the test.
    req.on('error', reject);
    if (headers['transfer-encoding'] === 'chunked') {
      for (let offset = 0; offset < body.length; offset += 8192) req.write(body.subarray(offset, offset + 8192));
      req.end();
    } else {
      req.end(body);
    }
  });
}

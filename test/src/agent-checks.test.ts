// Every row of the agent's check table, against a real agent process: the refusal, its code, the message only that
// check gives (so the test fails if another check answered in its place), and nothing applied.
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
  errorMessage,
  openAnswer,
  post,
  signedBody,
  writeOp,
  type AgentClient,
  type CommandOptions,
  type Reply,
} from './support/commands.js';

const APPLY = '/v1/files/apply';
const MAX_BODY_BYTES = 64 * 1024;
let agent: AgentHandle;
let client: AgentClient;

before(async () => {
  agent = await startAgent(setupAgent({ config: { maxBodyBytes: MAX_BODY_BYTES } }));
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

/** The refusal of one check: its status and code, and a message that names what that check found. */
function assertRefused(
  reply: { status: number; code: string | undefined; message: string | undefined },
  status: number,
  code: string,
  message: string | RegExp,
): void {
  assert.deepEqual([reply.status, reply.code], [status, code], reply.message);
  if (typeof message === 'string') assert.equal(reply.message, message);
  else assert.match(reply.message ?? '', message);
}

const refusal = (reply: Reply): { status: number; code: string | undefined; message: string | undefined } => ({
  status: reply.status,
  code: errorCode(reply),
  message: errorMessage(reply),
});

function assertNothingApplied(name: string): void {
  assert.equal(existsSync(tpm(name)), false, `${name} must not have been written`);
  assert.deepEqual(readdirSync(agent.setup.outside), [], 'nothing may appear outside the roots');
}

describe('check 1: body size', () => {
  test('a valid command over the limit by its size alone: too_large; the same bytes at exactly the limit run', async () => {
    const body = signedBody(client.key, markPayload('cap'));
    // Whitespace after the envelope's JSON: the same envelope, the same command, only longer.
    const padded = (size: number): string => body + ' '.repeat(size - body.length);
    const over = await post(client.url, APPLY, padded(MAX_BODY_BYTES + 1));
    assertRefused(
      refusal(over),
      413,
      'too_large',
      `the declared body (${MAX_BODY_BYTES + 1} bytes) is over the limit of ${MAX_BODY_BYTES} bytes`,
    );
    assertNothingApplied('cap');
    const at = await post(client.url, APPLY, padded(MAX_BODY_BYTES));
    assert.equal(openAnswer(at, 'files.apply', client.agentPublicKey).results[0]?.status, 'written');
  });

  test('a declared Content-Length over the limit is refused before reading', async () => {
    const reply = await post(client.url, APPLY, 'x', { 'content-length': '1' });
    // A truthful small body passes check 1 and fails check 2.
    assertRefused(refusal(reply), 400, 'bad_request', "not an envelope: expected '{' at 0");
    const big = await rawPost(APPLY, { 'content-length': String(10 * 1024 * 1024) }, Buffer.alloc(16));
    assertRefused(
      big,
      413,
      'too_large',
      `the declared body (${10 * 1024 * 1024} bytes) is over the limit of ${MAX_BODY_BYTES} bytes`,
    );
  });

  test('a chunked body without Content-Length is cut off at the limit', async () => {
    const body = signedBody(client.key, {
      ...markPayload('big'),
      ops: [writeOp('TpmState', tpm('big'), Buffer.alloc(100 * 1024, 7))],
    });
    const reply = await rawPost(APPLY, { 'transfer-encoding': 'chunked' }, Buffer.from(body));
    assertRefused(reply, 413, 'too_large', `the body is over the limit of ${MAX_BODY_BYTES} bytes`);
    assertNothingApplied('big');
  });
});

describe('check 2: envelope shape', () => {
  test('not JSON, a duplicate key, an unknown field, a missing field: bad_request', async () => {
    const good = JSON.parse(signedBody(client.key, markPayload('env'))) as Record<string, string>;
    const bodies: [string, RegExp][] = [
      ['not json', /^not an envelope: expected '\{' at 0$/],
      [
        `{"keyId":"${good['keyId'] ?? ''}","keyId":"${good['keyId'] ?? ''}","payload":"${good['payload'] ?? ''}","signature":"${good['signature'] ?? ''}"}`,
        /^not an envelope: duplicate key "keyId" at \d+$/,
      ],
      [JSON.stringify({ ...good, extra: 1 }), /^not an envelope: unknown key "extra" at \d+$/],
      [JSON.stringify({ keyId: good['keyId'], payload: good['payload'] }), /^not an envelope: missing signature$/],
      [JSON.stringify({ ...good, signature: 'not base64!' }), /^not an envelope: signature: base64 of 64 bytes$/],
    ];
    for (const [body, message] of bodies) {
      assertRefused(refusal(await post(client.url, APPLY, body)), 400, 'bad_request', message);
    }
    assertNothingApplied('env');
  });
});

describe('checks 3 and 4: key and signature', () => {
  test('a key the agent does not trust: unknown_key', async () => {
    const stranger = generateSigningKey();
    const reply = await post(client.url, APPLY, signedBody(stranger, markPayload('k')));
    assertRefused(refusal(reply), 401, 'unknown_key', `no trusted key has keyId ${stranger.keyId}`);
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
      assertRefused(refusal(reply), 401, 'bad_signature', 'the signature does not verify');
    }
    assertNothingApplied('s');
    assertNothingApplied('s2');
    assertNothingApplied('s3');
  });
});

describe('check 5: the command', () => {
  test('an invalid command, an unknown field, or another kind: bad_request', async () => {
    const payloads: [Record<string, unknown>, string | RegExp][] = [
      [{ ...markPayload('c1'), extra: true }, 'bad command: (root): unknown key "extra"'],
      [
        { ...markPayload('c2'), ops: [{ ...writeOp('TpmState', tpm('c2'), 'x'), mode: 777 }] },
        'bad command: ops.0: unknown key "mode"',
      ],
      [{ ...markPayload('c3'), issuedAt: 1.5 }, /^bad command: issuedAt: .*expected int/],
      [
        commandPayload('files.list', client.hostUuid, { types: ['TpmState'] }),
        'a files.list command sent to the files.apply endpoint',
      ],
      [{ ...markPayload('c4'), ops: [] }, /^bad command: ops: .*>=1 items/],
    ];
    for (const [payload, message] of payloads) {
      const reply = await post(client.url, APPLY, signedBody(client.key, payload));
      assertRefused(refusal(reply), 400, 'bad_request', message);
    }
    for (const name of ['c1', 'c2', 'c3', 'c4']) assertNothingApplied(name);
  });

  test('a payload with a duplicate key is refused even though it is signed', async () => {
    const text = JSON.stringify(markPayload('dup')).replace('{', '{"hostUuid":"00000000-0000-4000-8000-000000000000",');
    const reply = await post(client.url, APPLY, signedBody(client.key, Buffer.from(text)));
    assertRefused(refusal(reply), 400, 'bad_request', /^the command is not JSON: .*duplicate key "hostUuid"/);
    assertNothingApplied('dup');
  });
});

test('check 6: a command for another host: wrong_host', async () => {
  const payload = commandPayload('files.apply', '7d0c3b1e-5b8a-4c39-9d2f-1f6f0e2a4b11', {
    ops: [writeOp('TpmState', tpm('h'), 'x')],
  });
  const reply = await post(client.url, APPLY, signedBody(client.key, payload));
  assertRefused(
    refusal(reply),
    403,
    'wrong_host',
    `the command is for host 7d0c3b1e-5b8a-4c39-9d2f-1f6f0e2a4b11, this is ${client.hostUuid}`,
  );
  assertNothingApplied('h');
});

test('check 7: issued in the future, expired, or valid too long: expired', async () => {
  const now = Date.now();
  const cases: [CommandOptions, string][] = [
    [{ issuedAt: now + 120_000, expiresAt: now + 180_000 }, 'the command was issued in the future'],
    [{ issuedAt: now - 200_000, expiresAt: now - 100_000 }, 'the command has expired'],
    [{ issuedAt: now, expiresAt: now + 300_001 }, 'a command is valid for 1 to 300000 ms, not 300001'],
    [{ issuedAt: now, expiresAt: now }, 'a command is valid for 1 to 300000 ms, not 0'],
  ];
  for (const [index, [times, message]] of cases.entries()) {
    const reply = await post(client.url, APPLY, signedBody(client.key, markPayload(`t${index}`, times)));
    assertRefused(refusal(reply), 401, 'expired', message);
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
  assertRefused(
    refusal(replayed),
    409,
    'replayed',
    `requestId ${String(first['requestId'])} was seen with other payload bytes`,
  );
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
  const NOT_NORMALIZED = 'the path is not normalized';
  const notBelow = (): string => `the path is not below the root ${root()}`;
  /** Each bad path, and what check 9 says of it. */
  const bad = (): [string, string][] => [
    [`${root()}/../outside/x`, NOT_NORMALIZED],
    [`${root()}/a/../../outside/x`, NOT_NORMALIZED],
    [`${root()}/./a`, NOT_NORMALIZED],
    [`${root()}//a`, NOT_NORMALIZED],
    [`${root()}/a/`, NOT_NORMALIZED],
    [`${root()}/a\0b`, 'the path contains NUL'],
    ['relative/path', 'the path is not absolute'],
    [root(), notBelow()],
    [`${root()}x/a`, notBelow()],
    [nvram('in-the-other-root'), notBelow()],
    [`${root()}/vm/.hostfiles-tmp-state-0123`, "names starting .hostfiles-tmp- are the agent's temp files"],
    [join(agent.setup.outside, 'x'), notBelow()],
  ];

  test('every bad path is refused with outside_root, and the good op beside it is not applied', async () => {
    for (const [path, why] of bad()) {
      const payload = commandPayload('files.apply', client.hostUuid, {
        ops: [writeOp('TpmState', tpm('good'), 'g'), writeOp('TpmState', path, 'evil')],
      });
      const reply = await post(client.url, APPLY, signedBody(client.key, payload));
      assertRefused(refusal(reply), 403, 'outside_root', `item 1: ${why}`);
      assertNothingApplied('good');
      const refusedAs = async (endpoint: string, refused: Record<string, unknown>): Promise<void> => {
        const answer = await post(client.url, endpoint, signedBody(client.key, refused));
        assertRefused(refusal(answer), 403, 'outside_root', `item 0: ${why}`);
      };
      await refusedAs(APPLY, commandPayload('files.apply', client.hostUuid, { ops: [deleteOp('TpmState', path)] }));
      const files = [{ type: 'TpmState', path }];
      await refusedAs('/v1/files/read', commandPayload('files.read', client.hostUuid, { files }));
      await refusedAs('/v1/files/stat', commandPayload('files.stat', client.hostUuid, { files }));
      const dir = commandPayload('files.apply', client.hostUuid, {
        ops: [writeDirOp('TpmState', path, [{ path: 'f', content: Buffer.from('evil') }])],
      });
      await refusedAs(APPLY, dir);
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
      assertRefused(refusal(reply), 403, 'outside_root', 'item 1 entry 0: the path contains a line break');
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
    assertRefused(refusal(reply), 400, 'bad_request', 'item 1: sha256 does not match the content');
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
    assertRefused(
      refusal(await post(client.url, APPLY, signedBody(client.key, badPayload))),
      403,
      'outside_root',
      `item 0: the path is not below the root ${agent.setup.roots.TpmState}`,
    );
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
  const first401 = await post(client.url, APPLY, signedBody(stranger, invalid));
  assertRefused(refusal(first401), 401, 'unknown_key', `no trusted key has keyId ${stranger.keyId}`);
  const old = commandPayload(
    'files.apply',
    '7d0c3b1e-5b8a-4c39-9d2f-1f6f0e2a4b11',
    { ops: [writeOp('TpmState', tpm('o2'), 'x')] },
    { issuedAt: 1, expiresAt: 2 },
  );
  const wrongHost = await post(client.url, APPLY, signedBody(client.key, old));
  assertRefused(refusal(wrongHost), 403, 'wrong_host', /^the command is for host 7d0c3b1e-/);
  const first = markPayload('o3');
  openAnswer(await post(client.url, APPLY, signedBody(client.key, first)), 'files.apply', client.agentPublicKey);
  const replayOutside = { ...first, ops: [writeOp('TpmState', '/etc/passwd', 'x')] };
  const replayed = await post(client.url, APPLY, signedBody(client.key, replayOutside));
  assertRefused(refusal(replayed), 409, 'replayed', /^requestId [0-9a-f-]+ was seen with other payload bytes$/);
});

/** A request whose headers the test controls fully (fetch would fix Content-Length itself). */
function rawPost(
  path: string,
  headers: Record<string, string>,
  body: Buffer,
): Promise<{ status: number; code: string | undefined; message: string | undefined }> {
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
          let error: { code?: string; message?: string } | undefined;
          try {
            error = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
          } catch {
            error = undefined;
          }
          resolve({ status: res.statusCode ?? 0, code: error?.code, message: error?.message });
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

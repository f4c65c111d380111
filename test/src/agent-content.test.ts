// Check 9 for content, against a real agent process: entries of directory states, gzip bombs, the content budget.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { writeDirOp, writeOp as sharedWriteOp } from '@hostfiles/shared';
import { removeSetup, setupAgent, startAgent, type AgentHandle } from './support/agent-process.js';
import {
  agentInfo,
  commandPayload,
  errorCode,
  openAnswer,
  post,
  signedBody,
  writeOp,
  type AgentClient,
} from './support/commands.js';

const APPLY = '/v1/files/apply';
/** The agent's budget of decoded content per command, small here so bombs and big batches fit the body limit. */
const MAX_CONTENT = 1024 * 1024;
let agent: AgentHandle;
let client: AgentClient;

before(async () => {
  agent = await startAgent(setupAgent({ config: { maxBodyBytes: 64 * 1024, maxContentBytes: MAX_CONTENT } }));
  client = {
    url: agent.url,
    hostUuid: agent.setup.hostUuid,
    key: agent.setup.controllerKey,
    agentPublicKey: (await agentInfo(agent.url)).publicKey,
  };
});
after(async () => {
  assert.equal(await agent.stop(), 0);
  removeSetup(agent.setup);
});

const tpm = (name: string): string => join(agent.setup.roots.TpmState, name);
const nvram = (name: string): string => join(agent.setup.roots.NvRam, name);

function assertNothingApplied(name: string): void {
  assert.equal(existsSync(tpm(name)), false, `${name} must not have been written`);
  assert.deepEqual(readdirSync(agent.setup.outside), [], 'nothing may appear outside the roots');
}

describe('check 9: content', () => {
  test('writeDir entries: a bad path is outside_root; twice, a file that is also a parent, a wrong sha256: bad_request', async () => {
    const entry = (path: string, text = 'x') => ({ path, content: Buffer.from(text) });
    const cases: [string, Record<string, unknown>[], string][] = [
      ['../escape', [writeDirOp('TpmState', tpm('wd1'), [entry('../escape')])], 'outside_root'],
      ['lock', [writeDirOp('TpmState', tpm('wd2'), [entry('tpm2/.lock')])], 'outside_root'],
      ['temp', [writeDirOp('TpmState', tpm('wd3'), [entry('.hostfiles-tmp-new.x')])], 'outside_root'],
      ['twice', [writeDirOp('TpmState', tpm('wd4'), [entry('a'), entry('a')])], 'bad_request'],
      ['file and parent', [writeDirOp('TpmState', tpm('wd5'), [entry('tpm2'), entry('tpm2/a')])], 'bad_request'],
    ];
    const wrongSha = writeDirOp('TpmState', tpm('wd6'), [entry('a')]);
    const first = wrongSha.entries[0];
    if (first !== undefined) wrongSha.entries[0] = { ...first, sha256: '0'.repeat(64) };
    cases.push(['wrong sha256', [wrongSha], 'bad_request']);
    for (const [what, ops, code] of cases) {
      const payload = commandPayload('files.apply', client.hostUuid, {
        ops: [writeOp('TpmState', tpm('wd-good'), 'g'), ...ops],
      });
      const reply = await post(client.url, APPLY, signedBody(client.key, payload));
      assert.equal(errorCode(reply), code, what);
    }
    for (const name of ['wd-good', 'wd1', 'wd2', 'wd3', 'wd4', 'wd5', 'wd6']) assertNothingApplied(name);
  });

  test('a gzip bomb answers 413 too_large before anything is inflated past the budget; nothing is applied', async () => {
    const inflated = Buffer.alloc(16 * MAX_CONTENT);
    const bomb = sharedWriteOp('TpmState', tpm('bomb'), inflated, { compress: true });
    const payload = commandPayload('files.apply', client.hostUuid, {
      ops: [writeOp('TpmState', tpm('bomb-ok'), 'ok'), bomb],
    });
    const body = signedBody(client.key, payload);
    assert.ok(body.length < 64 * 1024, 'the bomb passes check 1: it is small on the wire');
    const reply = await post(client.url, APPLY, body);
    assert.equal(reply.status, 413);
    assert.equal(errorCode(reply), 'too_large');
    assert.match(JSON.stringify(reply.json), /more than 1048576 bytes of content/);
    assertNothingApplied('bomb');
    assertNothingApplied('bomb-ok');
  });

  test('a command whose contents add up past maxContentBytes answers 413; none of its ops is applied', async () => {
    const half = Buffer.alloc(MAX_CONTENT / 2 + 1, 1);
    const ops = [
      sharedWriteOp('NvRam', nvram('budget-1'), half, { compress: true }),
      writeDirOp('TpmState', tpm('budget-2'), [{ path: 'tpm2/state', content: half }]),
    ];
    const reply = await post(
      client.url,
      APPLY,
      signedBody(client.key, commandPayload('files.apply', client.hostUuid, { ops })),
    );
    assert.equal(reply.status, 413);
    assert.equal(errorCode(reply), 'too_large');
    assertNothingApplied('budget-2');
    assert.equal(existsSync(nvram('budget-1')), false);
    // Each alone fits.
    const alone = await post(
      client.url,
      APPLY,
      signedBody(client.key, commandPayload('files.apply', client.hostUuid, { ops: [ops[1]] })),
    );
    assert.equal(openAnswer(alone, 'files.apply', client.agentPublicKey).results[0]?.status, 'written');
  });
});

// Check 7 (the command's times) on virtual time: the agent's clock is a number the test sets, so each edge of the
// skew and lifetime bounds is tried from both sides, to the millisecond, and a command is seen to expire as time
// passes — nothing here depends on how long the test takes.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import {
  buildCommand,
  COMMAND_CONTEXT,
  deleteOp,
  MAX_COMMAND_LIFETIME_MS,
  signEnvelope,
  writeOp,
  type ApplyResult,
} from '@hostfiles/shared';
import { testApp } from './test-app.js';

const SKEW_MS = 30_000;
const START = 1_800_000_000_000;

interface Clocked {
  /** the agent's clock: set it, and the app, its journal and its budget read it */
  readonly clock: { now: number };
  /** POSTs a files.apply with these times (the same bytes again for a requestId sent before); its outcome */
  send(times: { issuedAt: number; expiresAt: number }, requestId?: string): Promise<Outcome>;
}

interface Outcome {
  readonly status: number;
  readonly code?: string;
  readonly message?: string;
}

async function clockedAgent(t: TestContext): Promise<Clocked> {
  const clock = { now: START };
  const { app, roots, hostUuid, controller } = await testApp(t, { now: () => clock.now, clockSkewMs: SKEW_MS });
  // One body per requestId: sending a requestId again sends the very bytes again (a retry), as a controller does.
  const bodies = new Map<string, string>();
  const bodyOf = (times: { issuedAt: number; expiresAt: number }, requestId: string): string => {
    const path = join(roots.TpmState, `vm-${bodies.size}`, 'state');
    const command = {
      ...buildCommand(
        'files.apply',
        hostUuid,
        { ops: [writeOp('TpmState', path, Buffer.from('s'))] },
        {
          now: times.issuedAt,
          requestId,
        },
      ),
      ...times,
    };
    const body = bodies.get(requestId) ?? JSON.stringify(signEnvelope(COMMAND_CONTEXT, command, controller));
    bodies.set(requestId, body);
    return body;
  };
  return {
    clock,
    async send(times, requestId = randomUUID()) {
      const reply = await app.request('/v1/files/apply', { method: 'POST', body: bodyOf(times, requestId) });
      if (reply.status === 200) return { status: 200 };
      const { error } = (await reply.json()) as { error: { code: string; message: string } };
      return { status: reply.status, code: error.code, message: error.message };
    },
  };
}

const ok = { status: 200 };
const refused = (message: RegExp) => (outcome: Outcome) => {
  assert.equal(outcome.status, 401);
  assert.equal(outcome.code, 'expired');
  assert.match(outcome.message ?? '', message);
};

test('check 7 at each edge: issued up to the skew ahead, expired up to the skew behind, lifetimes 1 ms to the maximum', async (t) => {
  const agent = await clockedAgent(t);
  const now = START;
  // Issued in the future: the skew is allowed, a millisecond more is not.
  assert.deepEqual(await agent.send({ issuedAt: now + SKEW_MS, expiresAt: now + SKEW_MS + 60_000 }), ok);
  refused(/issued in the future/)(await agent.send({ issuedAt: now + SKEW_MS + 1, expiresAt: now + SKEW_MS + 60_001 }));
  // Expired: an expiry the skew behind the clock is over; a millisecond later is still good.
  refused(/has expired/)(await agent.send({ issuedAt: now - SKEW_MS - 60_000, expiresAt: now - SKEW_MS }));
  assert.deepEqual(await agent.send({ issuedAt: now - SKEW_MS - 60_000, expiresAt: now - SKEW_MS + 1 }), ok);
  // Lifetime: the maximum is allowed, a millisecond more is not, and none at all is not.
  assert.deepEqual(await agent.send({ issuedAt: now, expiresAt: now + MAX_COMMAND_LIFETIME_MS }), ok);
  refused(/valid for 1 to/)(await agent.send({ issuedAt: now, expiresAt: now + MAX_COMMAND_LIFETIME_MS + 1 }));
  refused(/valid for 1 to/)(await agent.send({ issuedAt: now, expiresAt: now }));
  assert.deepEqual(await agent.send({ issuedAt: now, expiresAt: now + 1 }), ok);
});

test('as the clock moves: a command refused as early becomes good; a retry of one applied is answered from the journal even once it expired', async (t) => {
  const agent = await clockedAgent(t);
  const times = { issuedAt: START + SKEW_MS + 1_000, expiresAt: START + SKEW_MS + 61_000 };
  refused(/issued in the future/)(await agent.send(times, 'b6c8c1a4-3c1f-4a55-9b8e-4d5b3f0d2e01'));
  agent.clock.now = START + 1_000;
  // The same times, now within the skew.
  const requestId = 'b6c8c1a4-3c1f-4a55-9b8e-4d5b3f0d2e02';
  assert.deepEqual(await agent.send(times, requestId), ok);
  // Its retry within the window is answered from the journal; so is one past it (expired past the skew): it applies
  // nothing, and `expired` would tell the controller that nothing landed. A new command with those times is refused.
  agent.clock.now = times.expiresAt + SKEW_MS - 1;
  assert.deepEqual(await agent.send(times, requestId), ok);
  agent.clock.now = times.expiresAt + SKEW_MS;
  assert.deepEqual(await agent.send(times, requestId), ok);
  refused(/has expired/)(await agent.send(times));
});

test("an op that reaches its change only past the command's life and the skew changes nothing: expired, the rest of its batch too", async (t) => {
  const clock = { now: START };
  let dirSyncs = 0;
  const { app, roots, hostUuid, controller } = await testApp(t, {
    now: () => clock.now,
    clockSkewMs: SKEW_MS,
    storeHooks: {
      // The first op's directory fsync is when its batch runs long: the clock passes the command's deadline
      // (expiresAt + skew) before the next op, on the same state and so after it, reaches its change.
      syncDir: () => {
        dirSyncs += 1;
        if (dirSyncs === 1) clock.now = START + 60_000 + SKEW_MS; // the very millisecond check 7 refuses from
        return Promise.resolve();
      },
    },
  });
  const dir = join(roots.TpmState, 'vm', 'tpm2');
  const ops = [
    writeOp('TpmState', join(dir, 'a'), Buffer.from('first')),
    writeOp('TpmState', join(dir, 'b'), Buffer.from('second')),
    deleteOp('TpmState', join(dir, 'a')),
  ];
  const command = buildCommand('files.apply', hostUuid, { ops }, { now: START, lifetimeMs: 60_000 });
  const reply = await app.request('/v1/files/apply', {
    method: 'POST',
    body: JSON.stringify(signEnvelope(COMMAND_CONTEXT, command, controller)),
  });
  assert.equal(reply.status, 200);
  const { payload } = (await reply.json()) as { payload: string };
  const { results } = JSON.parse(Buffer.from(payload, 'base64').toString('utf8')) as { results: ApplyResult[] };
  assert.deepEqual(
    results.map((r) => [r.status, r.error?.code]),
    [
      ['written', undefined],
      ['failed', 'expired'],
      ['failed', 'expired'],
    ],
  );
  assert.match(results[1]?.error?.message ?? '', /^the command expired \(with the clock skew\) 0 ms before this op/);
  // The first write landed; nothing of the later ops did: no second file, the first not deleted, no temp file left.
  assert.equal(readFileSync(join(dir, 'a'), 'utf8'), 'first');
  assert.equal(existsSync(join(dir, 'b')), false);
  assert.deepEqual(readdirSync(dir), ['a']);
});

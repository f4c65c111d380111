// SIGKILL at random points while the agent replaces state directories: after a restart every state is exactly
// its old or its new version, and nothing of the agent's temp entries is left anywhere under the roots.
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, watch } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { stateDigest, TEMP_PREFIX, writeDirOp, type WriteDirOp } from '@hostfiles/shared';
import { removeSetup, setupAgent, startAgent, type AgentHandle } from './support/agent-process.js';
import { clientOf, send } from './support/commands.js';

const ROUNDS = 24;
const UNITS = ['a', 'b', 'c', 'd'].map((n) => `${n}0f0f7bd4-1c55-4b4e-9d1a-6c2c1e0c9a1`);
const sha = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** Version `v` of a unit: a few hundred KiB that don't compress, like a real permall, and a small file or two. */
function version(unit: string, v: number): Record<string, Buffer> {
  const files: Record<string, Buffer> = {
    'tpm2/tpm2-00.permall': randomBytes(256 * 1024 + randomInt(64 * 1024)),
    'tpm2/tpm2-00.volatilestate': Buffer.from(`${unit} v${v}`),
  };
  // Some versions have a file the others lack: a replace must not keep it, nor lose it.
  if (v % 3 === 0) files['tpm2/tpm2-00.savestate'] = randomBytes(8 * 1024);
  return files;
}

const digestOf = (files: Record<string, Buffer>): string =>
  stateDigest(Object.entries(files).map(([path, bytes]) => ({ path, sha256: sha(bytes) })));

/** The digest of what is on disk now, as the agent would compute it (lock and temp names excluded). */
function diskDigest(dir: string): string {
  const files: { path: string; sha256: string }[] = [];
  const walk = (at: string, prefix: string): void => {
    for (const name of readdirSync(at)) {
      const stats = lstatSync(join(at, name));
      if (stats.isDirectory()) walk(join(at, name), `${prefix}${name}/`);
      else if (stats.isFile() && name !== '.lock')
        files.push({ path: `${prefix}${name}`, sha256: sha(readFileSync(join(at, name))) });
    }
  };
  walk(dir, '');
  return stateDigest(files);
}

function tempLeftovers(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((path) =>
    path.split('/').some((name) => name.startsWith(TEMP_PREFIX)),
  );
}

function opsFor(root: string, v: number): { ops: WriteDirOp[]; digests: Map<string, string> } {
  const digests = new Map<string, string>();
  const ops = UNITS.map((unit) => {
    const files = version(unit, v);
    digests.set(unit, digestOf(files));
    return writeDirOp(
      'TpmState',
      join(root, unit),
      Object.entries(files).map(([path, content]) => ({ path, content })),
    );
  });
  return { ops, digests };
}

/**
 * Fault injection, not waiting for anything: even rounds kill at a random moment from before the batch is read
 * to after it is answered; odd rounds kill at the k-th (random) change the agent makes in the root (staging
 * made, committed, swapped, dropped…), which lands inside the replaces themselves.
 */
async function killSomewhereIn(
  agent: AgentHandle,
  root: string,
  round: number,
  fullMs: number,
  answered: Promise<string>,
): Promise<void> {
  if (round % 2 === 0) {
    await new Promise((resolve) => setTimeout(resolve, Math.random() * fullMs));
    agent.process.kill('SIGKILL');
    return;
  }
  const k = randomInt(1, 6 * UNITS.length);
  let seen = 0;
  const watcher = watch(root);
  await Promise.race([
    new Promise<void>((resolve) => {
      watcher.on('change', () => {
        seen += 1;
        if (seen >= k) resolve();
      });
    }),
    answered,
  ]);
  watcher.close();
  agent.process.kill('SIGKILL');
}

test(`SIGKILL at random points of ${ROUNDS} rounds of state replaces: each state old or new, whole; no temp left`, async (t) => {
  const setup = setupAgent();
  t.after(() => {
    removeSetup(setup);
  });
  const root = setup.roots.TpmState;
  let agent = await startAgent(setup);
  t.after(() => agent.stop('SIGKILL'));
  // Versions 0 and 1 applied in full; the second (warm) one's duration bounds the random kill delays.
  const initial = opsFor(root, 0);
  const first = await send(await clientOf(agent), 'files.apply', { ops: initial.ops });
  assert.ok(first.results.every((r) => r.status === 'written'));
  const warm = opsFor(root, 1);
  const started = performance.now();
  const second = await send(await clientOf(agent), 'files.apply', { ops: warm.ops });
  const fullMs = performance.now() - started;
  assert.ok(second.results.every((r) => r.status === 'written'));
  const current = new Map(warm.digests);
  const outcomes = { old: 0, new: 0, recoveredStarts: 0 };

  for (let round = 2; round < ROUNDS + 2; round++) {
    const next = opsFor(root, round);
    const client = await clientOf(agent);
    const inFlight = send(client, 'files.apply', { ops: next.ops }).then(
      () => 'answered',
      () => 'cut off',
    );
    await killSomewhereIn(agent, root, round, fullMs, inFlight);
    await inFlight;
    assert.equal(await agent.exited, null, 'killed, not exited');

    agent = await startAgent(setup);
    if (agent.lines.some((line) => /"event":"(state_recovered|temp_files_removed)"/.test(line))) {
      outcomes.recoveredStarts += 1;
    }
    for (const unit of UNITS) {
      const digest = diskDigest(join(root, unit));
      const was = digest === current.get(unit) ? 'old' : digest === next.digests.get(unit) ? 'new' : 'torn';
      assert.notEqual(was, 'torn', `round ${round}: ${unit} is neither its old nor its new state`);
      outcomes[was === 'old' ? 'old' : 'new'] += 1;
      current.set(unit, digest);
    }
    assert.deepEqual(tempLeftovers(setup.roots.TpmState), [], `round ${round}: no temp entries left`);
    assert.deepEqual(tempLeftovers(setup.roots.NvRam), []);
    assert.deepEqual(readdirSync(root).sort(), [...UNITS].sort());
  }
  t.diagnostic(JSON.stringify({ fullMs: Math.round(fullMs), ...outcomes }));
  // The kills must have hit the replaces themselves, or this test would prove nothing.
  assert.ok(outcomes.old > 0 && outcomes.new > 0, JSON.stringify(outcomes));
  assert.ok(outcomes.recoveredStarts > 0, `some restart had a replace to settle: ${JSON.stringify(outcomes)}`);
});

// For the store tests of the purge and the retry pass's settle: those are the flows' own transactions, so the tests
// run the flows themselves, over a real database file, against real agent processes (local-agents.ts).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { generateSigningKey } from '@hostfiles/shared';
import { createAgentClient } from '../agents/index.js';
import { addHost, createVmQueue, type FlowDeps } from '../flows/index.js';
import { startLocalAgent, type LocalAgent } from '../local/local-agents.js';
import type { Store, StoreTx } from './types.js';

export interface AgentHost {
  readonly uuid: string;
  readonly agent: LocalAgent;
}

/** Retry backoff of these deps: base 1 s, and jitter 0.5, so a first failure is due again 750 ms later. */
export const RETRY_BASE_MS = 1000;

/**
 * Flow deps over `store` whose clock is `now` (agents get real time: they check a command's times), and one real
 * agent per name, added as a host is (its key and certificate pinned). Agents stop after the test.
 */
export async function flowHosts(
  t: TestContext,
  store: Store,
  names: readonly string[],
  now: () => number,
): Promise<{ deps: FlowDeps; hosts: AgentHost[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'hostfiles-store-agents-'));
  const key = generateSigningKey();
  const agents = createAgentClient({ key, timeoutMs: 5000, retries: 0, now: Date.now, backoffMs: 0 });
  const started: LocalAgent[] = [];
  t.after(async () => {
    await agents.close();
    await Promise.all(started.map((agent) => agent.stop()));
    await rm(dir, { recursive: true, force: true });
  });
  const deps: FlowDeps = {
    store,
    agents,
    queue: createVmQueue(),
    now,
    random: () => 0.5,
    concurrency: 4,
    retryBaseMs: RETRY_BASE_MS,
    retryMaxMs: 60_000,
  };
  const hosts: AgentHost[] = [];
  for (const name of names) {
    const agent = await startLocalAgent(dir, name, key.publicKey);
    started.push(agent);
    const host = await addHost(deps, { name, url: agent.url, expectKey: agent.publicKey });
    hosts.push({ uuid: host.uuid, agent });
  }
  return { deps, hosts };
}

/**
 * The store, whose transactions fail once the flow finishes its operation in them: after every other write of that
 * transaction ran. What the flow wrote there must all roll back with it.
 */
export function failingAtFinish(store: Store): Store {
  const failing = (tx: StoreTx): StoreTx => ({
    ...tx,
    finishOperation: async (...args) => {
      await tx.finishOperation(...args);
      throw new Error('injected: the transaction fails after its last write');
    },
  });
  return { ...store, transaction: (fn) => store.transaction((tx) => fn(failing(tx))) };
}

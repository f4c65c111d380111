// One controller of the outbox-drain benchmark (drain.ts), in a process of its own as a `serve` is: it opens the
// database, registers, and runs the product's retry pass over its share of the hosts (the worker's round, without
// the timers) until the outbox is empty. On "go" it starts; when done it prints its CPU time and waits for "exit".
import { createInterface } from 'node:readline';
import { signingKeyFromPem } from '@hostfiles/shared';
import { createAgentClient } from '../agents/index.js';
import {
  createFleetShare,
  createLeasedQueue,
  createVmQueue,
  registerController,
  retryPendingDeletions,
  type FlowDeps,
} from '../flows/index.js';
import { openStore } from '../cli/context.js';

interface Job {
  readonly db: string;
  readonly keyPem: string;
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '{}') as Job;
  const store = await openStore(job.db);
  const settings = { leaseMs: 15_000, graceMs: 92_000 };
  const registration = await registerController(store, { now: Date.now, settings });
  const agents = createAgentClient({
    key: signingKeyFromPem(job.keyPem),
    timeoutMs: 120_000,
    retries: 0,
    now: Date.now,
  });
  const deps: FlowDeps = {
    store,
    agents,
    queue: createLeasedQueue(createVmQueue(), store, registration, { now: Date.now }),
    now: Date.now,
    random: Math.random,
    concurrency: 32,
    retryBaseMs: 5_000,
    retryMaxMs: 600_000,
    controller: registration,
  };
  const lines = createInterface({ input: process.stdin });
  const next = (): Promise<string> => new Promise((resolve) => lines.once('line', resolve));
  console.log(JSON.stringify({ ready: true }));
  await next();
  const cpu = process.cpuUsage();
  const share = createFleetShare(store, registration, Date.now);
  let confirmed = 0;
  let passes = 0;
  for (;;) {
    const mine = await share();
    const report = await retryPendingDeletions(deps, { hostUuids: mine });
    confirmed += report.confirmed;
    passes += 1;
    if (report.attempted > 0) continue;
    if ((await store.nextDeletionDueAt()) === null) break;
    // Nothing of ours was due: the rest is another controller's share, or comes back to us at a later round (serve's
    // worker waits for its health interval; here a short pause, so the drain's end is seen soon).
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const used = process.cpuUsage(cpu);
  console.log(JSON.stringify({ done: true, confirmed, passes, cpuMs: (used.user + used.system) / 1000 }));
  await next();
  await agents.close();
  await registration.retire();
  await store.close();
  lines.close();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

// Running a flow whose paths come from the database: they are read before the claim (every key must be named up
// front, in one claim with the VM's), and read again once held.
import type { VmHostFile } from '../store/index.js';
import type { FlowDeps } from './deps.js';
import { covers, keysOfStates, vmKey } from './lock-keys.js';
import type { LockKey } from './vm-queue.js';

export interface Plan<P> {
  readonly keys: readonly LockKey[];
  /** what the keys were derived from, handed to the flow as read under them */
  readonly value: P;
}

type Attempt<T> = { readonly held: true; readonly result: T } | { readonly held: false };

/**
 * Runs `fn` holding the keys `plan` derives. The plan read before the claim can be stale by the time the keys are
 * held: a flow queued ahead on the same VM may have moved a state to a new path, a merge may have handed a pending
 * deletion to another VM. So it is read again under the keys; if it then needs a key not held, the keys are let go
 * and claimed anew. Each round means another flow finished such a change, so this ends; and what the keys name
 * changes only under them, so the plan read under them is the one `fn` goes on with.
 */
export async function runPlanned<P, T>(
  deps: Pick<FlowDeps, 'queue'>,
  plan: () => Promise<Plan<P>>,
  fn: (value: P) => Promise<T>,
): Promise<T> {
  for (;;) {
    const { keys } = await plan();
    const attempt = await deps.queue.run(keys, async (): Promise<Attempt<T>> => {
      const now = await plan();
      return covers(keys, now.keys) ? { held: true, result: await fn(now.value) } : { held: false };
    });
    if (attempt.held) return attempt.result;
  }
}

/**
 * The VMs and every state they have recorded, on any host: what a sync reads and a removal or destroy deletes. Their
 * rows change only under their VMs' keys, so once held, the plan read again is the one the flow goes on with.
 */
export async function planOnVms(deps: FlowDeps, vmUuids: readonly string[]): Promise<Plan<VmHostFile[]>> {
  const files = await deps.store.listFilesByVms(vmUuids);
  return { keys: [...vmUuids.map(vmKey), ...keysOfStates(files)], value: files };
}

// Controllers share the fleet's background work (health checks, the outbox's retries): each host's worker lease is
// held by one live controller at a time, and each controller takes no more than its fair share, ceil(hosts /
// controllers). A controller that dies lets its hosts go with its leases; one that joins finds the others giving
// back what exceeds their share at their next round.
import type { Store } from '../store/index.js';
import type { LeaseSettings } from './controller-lease.js';

const workerKey = (hostUuid: string): string => `worker:${hostUuid}`;
const holderOf = (controllerId: string, hostUuid: string): string => `worker:${controllerId}:${hostUuid}`;

export function createFleetShare(
  store: Store,
  controller: { readonly id: string; readonly settings: LeaseSettings },
  now: () => number,
): () => Promise<ReadonlySet<string>> {
  return async () => {
    const hosts = (await store.listHosts()).map((host) => host.uuid);
    const live = await store.listLiveControllers(now(), controller.settings.graceMs);
    const target = Math.ceil(hosts.length / Math.max(1, live.length));
    // A dead controller's leases do not count here: trying for its hosts drops them once its grace is over.
    const alive = new Set(live.map((c) => c.id));
    const holders = new Map(
      (await store.listLeaseHolders(hosts.map(workerKey)))
        .filter((row) => alive.has(row.controllerId))
        .map((row) => [row.key, row.controllerId]),
    );
    const mine = hosts.filter((uuid) => holders.get(workerKey(uuid)) === controller.id);
    // Beyond the share: given back, for a controller that joined to take.
    for (const uuid of mine.splice(target)) await store.releaseLeases(holderOf(controller.id, uuid));
    for (const uuid of hosts) {
      if (mine.length >= target) break;
      if (holders.has(workerKey(uuid))) continue;
      const taken = await store.tryAcquireLeases(
        holderOf(controller.id, uuid),
        controller.id,
        [{ key: workerKey(uuid), mode: 'exclusive' }],
        now(),
        controller.settings.graceMs,
      );
      if (taken) mine.push(uuid);
    }
    return new Set(mine);
  };
}

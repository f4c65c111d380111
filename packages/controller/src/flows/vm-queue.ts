// Serializes flows per VM: a flow on several VMs waits for all of them, so a concurrent write can never
// re-insert what a removal just purged, and a stale retry can never delete what a write just landed.

export interface VmQueue {
  run<T>(vmUuids: readonly string[], fn: () => Promise<T>): Promise<T>;
}

export interface VmQueueOptions {
  /**
   * Called at the claim, synchronously, with the keys of a run that must wait for an earlier one: what tells a flow
   * queued behind another from a flow that is merely slow (tests order concurrent flows by it, without sleeping).
   */
  readonly onWait?: (keys: readonly string[]) => void;
}

export function createVmQueue(options: VmQueueOptions = {}): VmQueue {
  const tails = new Map<string, Promise<void>>();
  return {
    async run(vmUuids, fn) {
      const unique = [...new Set(vmUuids)];
      const before = unique.map((uuid) => tails.get(uuid) ?? Promise.resolve());
      if (unique.some((uuid) => tails.has(uuid))) options.onWait?.(unique);
      let release: () => void = () => undefined;
      const mine = new Promise<void>((resolve) => {
        release = resolve;
      });
      // Claimed synchronously for every VM at once: no two multi-VM flows can each hold half of the other's VMs.
      for (const uuid of unique) tails.set(uuid, mine);
      try {
        await Promise.all(before);
        return await fn();
      } finally {
        release();
        for (const uuid of unique) if (tails.get(uuid) === mine) tails.delete(uuid);
      }
    },
  };
}

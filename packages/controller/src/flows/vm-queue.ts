// The in-process lock table flows run under: every flow names, before it starts, the keys of what it touches (its
// VMs, the (host, type, path) of each state, or a whole host; see lock-keys.ts), each shared or exclusive, and runs
// once it holds them all. So a concurrent write can never re-insert what a removal just purged, and a retry can never
// delete what a write just landed.

/** `shared` holders of a key run together; an `exclusive` one runs alone. */
export type LockMode = 'shared' | 'exclusive';

export interface LockKey {
  /** a plain deterministic string (lock-keys.ts): the same in every process, so it can become a database lock */
  readonly key: string;
  readonly mode: LockMode;
}

export interface VmQueue {
  /**
   * Runs `fn` once every key is held in its mode. All keys are claimed at once, at the call, and a run waits only for
   * runs that claimed before it: no two flows can each hold part of what the other waits for. A key named twice is
   * held in the stronger mode.
   */
  run<T>(keys: readonly LockKey[], fn: () => Promise<T>): Promise<T>;
}

export interface VmQueueOptions {
  /**
   * Called at the claim, synchronously, with the keys of a run that must wait for an earlier one: what tells a flow
   * queued behind another from a flow that is merely slow (tests order concurrent flows by it, without sleeping).
   */
  readonly onWait?: (keys: readonly string[]) => void;
}

/** Who holds a key, or waits for it: the latest exclusive claim, and the shared claims made since. */
interface Holders {
  exclusive: Promise<void> | undefined;
  shared: Set<Promise<void>>;
}

export function createVmQueue(options: VmQueueOptions = {}): VmQueue {
  const table = new Map<string, Holders>();

  /** Claims the key for `mine`; answers the earlier claims it must wait for (a claim is dropped once released). */
  const claim = (key: string, mode: LockMode, mine: Promise<void>): Promise<void>[] => {
    const holders = table.get(key) ?? { exclusive: undefined, shared: new Set<Promise<void>>() };
    table.set(key, holders);
    const before = holders.exclusive === undefined ? [] : [holders.exclusive];
    if (mode === 'shared') {
      holders.shared.add(mine);
      return before;
    }
    // An exclusive claim waits for the shared ones before it; later claims wait for it, and so for them too.
    before.push(...holders.shared);
    holders.exclusive = mine;
    holders.shared = new Set();
    return before;
  };

  const letGo = (key: string, mine: Promise<void>): void => {
    const holders = table.get(key);
    if (holders === undefined) return;
    holders.shared.delete(mine);
    if (holders.exclusive === mine) holders.exclusive = undefined;
    if (holders.exclusive === undefined && holders.shared.size === 0) table.delete(key);
  };

  return {
    async run(keys, fn) {
      const wanted = strongest(keys);
      let release: () => void = () => undefined;
      const mine = new Promise<void>((resolve) => {
        release = resolve;
      });
      // Claimed synchronously for every key at once: the wait-for graph only ever points at earlier claims.
      const before = [...wanted].flatMap(([key, mode]) => claim(key, mode, mine));
      try {
        // Inside the try: an observer that throws must not leave the keys claimed forever.
        if (before.length > 0) options.onWait?.([...wanted.keys()]);
        await Promise.all(before);
        return await fn();
      } finally {
        release();
        for (const key of wanted.keys()) letGo(key, mine);
      }
    },
  };
}

/** Each key once, in the stronger of the modes it was named with, in sorted order (the order a database takes them). */
function strongest(keys: readonly LockKey[]): Map<string, LockMode> {
  const modes = new Map<string, LockMode>();
  for (const { key, mode } of [...keys].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
    if (modes.get(key) !== 'exclusive') modes.set(key, mode);
  }
  return modes;
}

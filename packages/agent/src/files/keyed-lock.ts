// A keyed async mutex: callers with one key run one at a time, in call order; other keys run freely.

/**
 * Runs `run` once the key is this caller's. With a `signal`, a caller still waiting for its turn when it aborts
 * gives up: it rejects with the signal's reason, never runs, and the callers after it wait for the holder before it,
 * not for it. Once `run` has begun, the signal is run's to heed.
 */
export type KeyedLock = <T>(key: string, run: () => Promise<T>, signal?: AbortSignal) => Promise<T>;

export function createKeyedLock(): KeyedLock {
  const tails = new Map<string, Promise<void>>();
  return async <T>(key: string, run: () => Promise<T>, signal?: AbortSignal): Promise<T> => {
    const previous = tails.get(key) ?? Promise.resolve();
    let release = (): void => undefined;
    const done = new Promise<void>((resolve) => {
      release = resolve;
    });
    // Registered before the first await, so the order of calls is the order of turns.
    const tail = previous.then(() => done);
    tails.set(key, tail);
    // The last holder leaves no entry behind: the map holds only keys in use.
    const forget = (): void => {
      if (tails.get(key) === tail) tails.delete(key);
    };
    try {
      await (signal === undefined ? previous : turnOrAbort(previous, signal));
    } catch (error) {
      // Given up before its turn: its turn passes at once when it comes, and the entry goes once it has passed.
      release();
      void tail.then(forget);
      throw error;
    }
    try {
      return await run();
    } finally {
      release();
      forget();
    }
  };
}

/** `previous` (which never rejects), or a rejection with the signal's reason once it aborts before that. */
function turnOrAbort(previous: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<void>((resolve, reject) => {
    const abort = (): void => {
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', abort, { once: true });
    void previous.then(() => {
      signal.removeEventListener('abort', abort);
      resolve();
    });
  });
}

// A keyed async mutex: callers with one key run one at a time, in call order; other keys run freely.

export type KeyedLock = <T>(key: string, run: () => Promise<T>) => Promise<T>;

export function createKeyedLock(): KeyedLock {
  const tails = new Map<string, Promise<void>>();
  return async <T>(key: string, run: () => Promise<T>): Promise<T> => {
    const previous = tails.get(key) ?? Promise.resolve();
    let release = (): void => undefined;
    const done = new Promise<void>((resolve) => {
      release = resolve;
    });
    // Registered before the first await, so the order of calls is the order of turns.
    const tail = previous.then(() => done);
    tails.set(key, tail);
    await previous;
    try {
      return await run();
    } finally {
      release();
      // The last holder leaves no entry behind: the map holds only keys in use.
      if (tails.get(key) === tail) tails.delete(key);
    }
  };
}

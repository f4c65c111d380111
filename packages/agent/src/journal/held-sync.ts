// Tests only: the replay journal's fdatasync held by the test, and a look at whether a promise has settled.
import type { FileHandle } from 'node:fs/promises';

export interface HeldCall {
  /** lets the fdatasync run, and its caller go on once it has */
  release(): void;
  fail(error: Error): void;
  /** settles once a released fdatasync is done, before its caller hears so */
  readonly synced: Promise<void>;
}

/** The journal's fdatasync held by the test: each call waits until the test releases or fails it. */
export function heldSync(): {
  sync: (handle: FileHandle) => Promise<void>;
  /** the n-th call (from 1), once it is made */
  call: (n: number) => Promise<HeldCall>;
  count: () => number;
} {
  const calls: HeldCall[] = [];
  let made = (): void => undefined;
  return {
    sync: (handle) =>
      new Promise<void>((resolve, reject) => {
        let synced = (): void => undefined;
        calls.push({
          release: () => {
            handle.datasync().then(
              () => {
                synced();
                resolve();
              },
              (error: unknown) => {
                synced();
                reject(error instanceof Error ? error : new Error(String(error)));
              },
            );
          },
          fail: reject,
          synced: new Promise<void>((done) => {
            synced = done;
          }),
        });
        made();
      }),
    call: async (n) => {
      for (let call = calls[n - 1]; ; call = calls[n - 1]) {
        if (call !== undefined) return call;
        await new Promise<void>((resolve) => {
          made = resolve;
        });
      }
    },
    count: () => calls.length,
  };
}

/** Whether a promise has settled once every callback pending in this turn of the event loop has run. */
export async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  const mark = (): void => {
    done = true;
  };
  promise.then(mark, mark);
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

// Virtual time for the controller's clock and timers: tests move it forward themselves, so backoff, due times and
// wake-ups are checked to the millisecond without sleeping and without wall-clock bounds.
import type { Timers } from '@hostfiles/controller';

interface Armed {
  readonly due: number;
  readonly run: () => void;
  readonly id: number;
}

export interface VirtualTime {
  readonly now: () => number;
  readonly timers: Timers;
  /** The due times of the timers armed and not yet fired or cleared. */
  readonly pending: () => number[];
  /** Resolves with the due time of the next timer armed from now on (no sleeping: it resolves as it is armed). */
  readonly nextArmed: () => Promise<number>;
  /** Moves time forward `ms`, firing each timer that falls due on the way, at its due time and in due order. */
  readonly advance: (ms: number) => void;
}

export function virtualTime(start: number): VirtualTime {
  let now = start;
  let nextId = 1;
  const armed = new Map<number, Armed>();
  const waiting: ((due: number) => void)[] = [];
  const timers: Timers = {
    setTimeout(run, ms) {
      const timer = { due: now + Math.max(0, ms), run, id: nextId++ };
      armed.set(timer.id, timer);
      for (const resolve of waiting.splice(0)) resolve(timer.due);
      return timer.id;
    },
    clearTimeout(handle) {
      armed.delete(handle as number);
    },
  };
  return {
    now: () => now,
    timers,
    pending: () => [...armed.values()].map((t) => t.due).sort((a, b) => a - b),
    nextArmed: () =>
      new Promise((resolve) => {
        waiting.push(resolve);
      }),
    advance: (ms) => {
      const until = now + ms;
      for (;;) {
        const next = [...armed.values()].filter((t) => t.due <= until).sort((a, b) => a.due - b.due || a.id - b.id)[0];
        if (next === undefined) break;
        armed.delete(next.id);
        now = next.due;
        next.run();
      }
      now = until;
    },
  };
}

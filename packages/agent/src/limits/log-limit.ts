// Refusals of senders without a key are logged at a bounded rate: each line is short, but an attacker chooses how
// many there are, and a journal filled with them rotates out the record of the operations that were applied.

export interface LogLimit {
  /** undefined: leave this line out (it is counted); a number: log it, with how many were left out since the last */
  admit(): number | undefined;
}

/** At most `perSecond` lines in each second. */
export function createLogLimit(perSecond: number, now: () => number): LogLimit {
  let second = Number.NEGATIVE_INFINITY;
  let logged = 0;
  let skipped = 0;
  return {
    admit() {
      const current = Math.floor(now() / 1000);
      if (current !== second) {
        second = current;
        logged = 0;
      }
      if (logged >= perSecond) {
        skipped++;
        return undefined;
      }
      logged++;
      const before = skipped;
      skipped = 0;
      return before;
    },
  };
}

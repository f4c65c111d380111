// One budget of request-body bytes held at once, across all connections: what bounds the agent's memory whatever
// unauthenticated senders do. A request takes its share before its body is read and gives it back when it is done.

/** Bodies this small (reads, lists, stats, a TPM state's write) may use the whole budget; larger ones only 3/4 of it. */
export const SMALL_BODY_BYTES = 64 * 1024;

export interface BodyBudget {
  readonly limit: number;
  /** the bytes all requests hold now */
  inFlight(): number;
  /** a claim for one request's body, holding nothing yet */
  open(): BodyClaim;
}

export interface BodyClaim {
  /** the bytes this claim holds */
  readonly held: number;
  /** takes `bytes` more, or answers false (taking nothing) when that would pass the budget */
  take(bytes: number): boolean;
  /** gives back all it holds; later calls do nothing */
  release(): void;
}

/** The least budget a maximum-size body fits in: large bodies may fill only 3/4 of it. */
export const minimumBudget = (maxBodyBytes: number): number => Math.ceil((maxBodyBytes * 4) / 3);

export function createBodyBudget(limit: number): BodyBudget {
  if (!Number.isInteger(limit) || limit <= 0) throw new RangeError('the body budget must be a positive whole number');
  // A quarter is kept for small bodies: senders of large slow bodies, who need no key to send them, can fill the
  // rest but cannot keep out the controller's everyday commands.
  const largeLimit = limit - Math.floor(limit / 4);
  let inFlight = 0;
  return {
    limit,
    inFlight: () => inFlight,
    open() {
      let held = 0;
      let open = true;
      return {
        get held() {
          return held;
        },
        take(bytes) {
          if (!open) throw new Error('a released claim cannot take more');
          const ceiling = held + bytes > SMALL_BODY_BYTES ? largeLimit : limit;
          if (inFlight + bytes > ceiling) return false;
          inFlight += bytes;
          held += bytes;
          return true;
        },
        release() {
          if (!open) return;
          open = false;
          inFlight -= held;
          held = 0;
        },
      };
    },
  };
}

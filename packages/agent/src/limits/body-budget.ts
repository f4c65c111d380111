// One budget of request-body bytes held at once, across all connections: what bounds the agent's memory whatever
// unauthenticated senders do. A request takes its share before its body is read and gives it back when it is done.
// Large bodies are also paced: together they are read no faster than a set rate, so senders of large bodies, who need
// no key to send them, cannot take all of the agent's time (verifying 4 MiB costs ~10 ms) or flood it with garbage.

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
  /** `bytes` more were read: how long (ms) to wait before reading on; always 0 for a small body */
  pace(bytes: number): number;
  /**
   * A buffer of `bytes` for the body (its bytes are not cleared), `bytes` already taken: one given back by an earlier
   * request when one fits, its room past `bytes` taken too (or a new one when that does not fit), so what the claim
   * holds is the memory it keeps. It is the claim's until release, and nothing may keep a reference to it past that.
   */
  buffer(bytes: number): Buffer;
  /**
   * A larger buffer of `bytes` for a body that outgrew `old` (one of this claim's), its first `used` bytes copied
   * over; `old` goes back to the pool and what it counted to the budget, which takes the new one instead (both are in
   * memory only during this synchronous call). Undefined, changing nothing, when the budget has no room for it.
   */
  regrow(old: Buffer, used: number, bytes: number): Buffer | undefined;
  /** gives back all it holds; later calls do nothing */
  release(): void;
}

/** The least budget a maximum-size body fits in: large bodies may fill only 3/4 of it. */
export const minimumBudget = (maxBodyBytes: number): number => Math.ceil((maxBodyBytes * 4) / 3);

export interface BodyBudgetOptions {
  /** bytes held at once, all requests together */
  readonly limit: number;
  /** bytes of large bodies read per second, all requests together (a second's worth may come at once) */
  readonly largeBytesPerSecond: number;
  readonly now: () => number;
}

export function createBodyBudget({ limit, largeBytesPerSecond, now }: BodyBudgetOptions): BodyBudget {
  if (!Number.isInteger(limit) || limit <= 0) throw new RangeError('the body budget must be a positive whole number');
  if (!(largeBytesPerSecond > 0)) throw new RangeError('the large-body rate must be positive');
  const pace = createPace(largeBytesPerSecond, now);
  const pool = createPool(Math.floor(limit / 4));
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
      // Each buffer handed out, and what it counts (its size, and any room past it a pooled one had).
      const buffers = new Map<Buffer, number>();
      const take = (bytes: number): boolean => {
        if (!open) throw new Error('a released claim cannot take more');
        const ceiling = held + bytes > SMALL_BODY_BYTES ? largeLimit : limit;
        if (inFlight + bytes > ceiling) return false;
        inFlight += bytes;
        held += bytes;
        return true;
      };
      const bufferOf = (bytes: number): Buffer => {
        const found = pool.get(bytes);
        let buffer: Buffer;
        let counted = bytes;
        if (found !== undefined && (found.length === bytes || take(found.length - bytes))) {
          buffer = found.subarray(0, bytes);
          counted = found.length;
        } else {
          if (found !== undefined) pool.put(found);
          buffer = Buffer.allocUnsafe(bytes);
        }
        buffers.set(buffer, counted);
        return buffer;
      };
      return {
        get held() {
          return held;
        },
        take,
        pace: (bytes) => (held > SMALL_BODY_BYTES ? pace(bytes) : 0),
        buffer: bufferOf,
        regrow(old, used, bytes) {
          const counted = buffers.get(old) ?? 0;
          inFlight -= counted;
          held -= counted;
          if (!take(bytes)) {
            inFlight += counted;
            held += counted;
            return undefined;
          }
          const next = bufferOf(bytes);
          old.copy(next, 0, 0, used);
          buffers.delete(old);
          pool.put(old);
          return next;
        },
        release() {
          if (!open) return;
          open = false;
          inFlight -= held;
          held = 0;
          for (const buffer of buffers.keys()) pool.put(buffer);
          buffers.clear();
        },
      };
    },
  };
}

/**
 * A token bucket that may go into debt: each read takes its bytes, and waits until the debt of all reads is paid
 * back at `bytesPerSecond`. Many paused readers then resume at about the same time and share the rate.
 */
function createPace(bytesPerSecond: number, now: () => number): (bytes: number) => number {
  let available = bytesPerSecond;
  let at = now();
  return (bytes) => {
    const time = now();
    available = Math.min(bytesPerSecond, available + ((time - at) * bytesPerSecond) / 1000) - bytes;
    at = time;
    return available >= 0 ? 0 : Math.ceil((-available * 1000) / bytesPerSecond);
  };
}

/** Buffers of this size or more are kept for the next body: a flood of large bodies then leaves no garbage behind. */
const POOLED_BYTES = SMALL_BODY_BYTES;

/** Body buffers given back, up to `maxBytes` of them, handed out again to bodies they fit (at most twice the size). */
function createPool(maxBytes: number): { get(bytes: number): Buffer | undefined; put(buffer: Buffer): void } {
  const free: Buffer[] = [];
  let freeBytes = 0;
  return {
    /** a whole buffer of `bytes` to twice that, taken out of the pool; undefined when none fits */
    get(bytes) {
      const index = bytes < POOLED_BYTES ? -1 : free.findIndex((b) => b.length >= bytes && b.length <= 2 * bytes);
      const [found] = index === -1 ? [] : free.splice(index, 1);
      if (found !== undefined) freeBytes -= found.length;
      return found;
    },
    put(buffer) {
      // A view handed out by get() gives back the whole buffer it was cut from.
      const whole = Buffer.from(buffer.buffer, buffer.byteOffset, buffer.buffer.byteLength - buffer.byteOffset);
      if (whole.length < POOLED_BYTES || freeBytes + whole.length > maxBytes) return;
      free.push(whole);
      freeBytes += whole.length;
    },
  };
}

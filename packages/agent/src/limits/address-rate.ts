// New connections per remote address: a token bucket each, checked as the TCP connection is accepted — before any TLS
// handshake or HTTP parsing, the two costs an unauthenticated peer can make the agent pay for each connection it
// opens. Over the rate, the connection is closed at once; a controller keeps its connections alive and opens a few
// a minute, far under it.
import type { Server, Socket } from 'node:net';

export interface AddressRateOptions {
  /** new connections a second one address may open, on average */
  readonly perSecond: number;
  /** and at once, after a quiet spell */
  readonly burst: number;
  readonly now: () => number;
  /** buckets kept at most: past it, idle ones go, and addresses still new share one bucket (memory stays bounded) */
  readonly maxAddresses?: number;
}

export interface AddressRate {
  /** Whether a new connection from `address` may go on; it then spends one token of its bucket. */
  admit(address: string | undefined): boolean;
  /** how many buckets are kept now */
  readonly tracked: number;
}

const DEFAULT_MAX_ADDRESSES = 65_536;
/** The bucket addresses share once the table is full of active ones. */
const OVERFLOW = 'overflow';

interface Bucket {
  tokens: number;
  at: number;
}

export function createAddressRate(options: AddressRateOptions): AddressRate {
  const { perSecond, burst, now } = options;
  const maxAddresses = options.maxAddresses ?? DEFAULT_MAX_ADDRESSES;
  const buckets = new Map<string, Bucket>();
  const refill = (bucket: Bucket, at: number): void => {
    bucket.tokens = Math.min(burst, bucket.tokens + ((at - bucket.at) * perSecond) / 1000);
    bucket.at = at;
  };
  /** Drops the buckets that have refilled: they hold nothing a fresh one would not. */
  const sweep = (at: number): void => {
    for (const [key, bucket] of buckets) {
      refill(bucket, at);
      if (bucket.tokens >= burst) buckets.delete(key);
    }
  };
  const bucketOf = (key: string, at: number): Bucket => {
    let bucket = buckets.get(key);
    if (bucket !== undefined) return bucket;
    if (buckets.size >= maxAddresses) sweep(at);
    const room = buckets.size < maxAddresses;
    bucket = buckets.get(room ? key : OVERFLOW) ?? { tokens: burst, at };
    buckets.set(room ? key : OVERFLOW, bucket);
    return bucket;
  };
  return {
    admit(address) {
      const at = now();
      const bucket = bucketOf(addressKey(address), at);
      refill(bucket, at);
      if (bucket.tokens < 1) return false;
      bucket.tokens -= 1;
      return true;
    },
    get tracked() {
      return buckets.size;
    },
  };
}

/**
 * Whose bucket a connection spends: an IPv4 address itself (also when it comes IPv4-mapped), an IPv6 address by its
 * /64 — one host is given a whole /64 and could otherwise open each connection from an address of its own.
 */
export function addressKey(address: string | undefined): string {
  if (address === undefined) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1] !== undefined) return mapped[1];
  if (!address.includes(':')) return address;
  const [head = '', tail = ''] = address.toLowerCase().split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = address.includes('::')
    ? [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right]
    : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

/**
 * Closes, as it is accepted, each connection over its address's rate (`onRefuse` hears of each): first of the
 * server's `connection` listeners, so neither TLS nor HTTP does anything with it.
 */
export function limitNewConnections(server: Server, rate: AddressRate, onRefuse: () => void): void {
  server.prependListener('connection', (socket: Socket) => {
    if (rate.admit(socket.remoteAddress)) return;
    onRefuse();
    socket.destroy();
  });
}

// New connections per remote address: a token bucket each, checked as the TCP connection is accepted — before any TLS
// handshake or HTTP parsing, the two costs an unauthenticated peer can make the agent pay for each connection it
// opens. Over the rate, the connection is closed at once; a controller keeps its connections alive and opens a few
// a minute, far under it. What a connection let through may hold is connection-places.ts's.
import type { Server, Socket } from 'node:net';
import type { ConnectionPlaces } from './connection-places.js';

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

/** What `limitNewConnections` tells of the connections it closes. */
export interface ConnectionReports {
  /** a new connection over its address's rate, closed */
  readonly onRateLimited: () => void;
  /** a stranger's connection closed for a newer one from its address, which held all the strangers' places it may */
  readonly onAddressFull: () => void;
  /** a new connection past the server's places, every one of them a trusted controller's: closed */
  readonly onFull: () => void;
  /** a stranger's connection closed to give its place to a new one */
  readonly onReplaced: () => void;
}

/**
 * Checks each connection as it is accepted, first of the server's `connection` listeners, so that neither TLS nor
 * HTTP does anything with one it closes: its address's rate, then the server's places (connection-places.ts), where
 * it holds a place until it closes.
 */
export function limitNewConnections(
  server: Server,
  { rate, places }: { readonly rate: AddressRate; readonly places: ConnectionPlaces },
  reports: ConnectionReports,
): void {
  server.prependListener('connection', (socket: Socket) => {
    if (!rate.admit(socket.remoteAddress)) {
      reports.onRateLimited();
      socket.destroy();
      return;
    }
    const admission = places.admit(socket);
    if (admission === 'replaced') reports.onReplaced();
    else if (admission === 'replaced_own') reports.onAddressFull();
    else if (admission === 'refused') reports.onFull();
    if (admission === 'refused' || admission === 'gone') socket.destroy();
  });
}

// Connections per remote address, checked as the TCP connection is accepted — before any TLS handshake or HTTP
// parsing, the two costs an unauthenticated peer can make the agent pay for each connection it opens:
// - new connections: a token bucket each; over the rate, the connection is closed at once (a controller keeps its
//   connections alive and opens a few a minute, far under it);
// - open connections: at most so many at once, so that one address cannot hold a large share of the server's places
//   (each for up to a handshake's or a request's timeout); connection-places.ts keeps strangers from holding them all.
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

export interface AddressSlots {
  /** Takes one of `address`'s places: how to give it back, or undefined when the address holds all of its own. */
  take(address: string | undefined): (() => void) | undefined;
  /** how many addresses hold a place now (never more than the connections open) */
  readonly tracked: number;
}

/** At most `perAddress` open connections for each address (an IPv6 one by its /64, as the rate). */
export function createAddressSlots(perAddress: number): AddressSlots {
  const open = new Map<string, number>();
  return {
    take(address) {
      const key = addressKey(address);
      const held = open.get(key) ?? 0;
      if (held >= perAddress) return undefined;
      open.set(key, held + 1);
      let given = false;
      return () => {
        if (given) return;
        given = true;
        const left = (open.get(key) ?? 1) - 1;
        if (left > 0) open.set(key, left);
        else open.delete(key);
      };
    },
    get tracked() {
      return open.size;
    },
  };
}

/** What `limitNewConnections` tells of the connections it closes. */
export interface ConnectionReports {
  /** a new connection over its address's rate, closed */
  readonly onRateLimited: () => void;
  /** a new connection past its address's open connections, closed */
  readonly onAddressFull: () => void;
  /** a new connection past the server's, every one of them a trusted controller's: closed */
  readonly onFull: () => void;
  /** a stranger's connection closed to give its place to a new one */
  readonly onReplaced: () => void;
}

/**
 * Checks each connection as it is accepted, first of the server's `connection` listeners, so that neither TLS nor
 * HTTP does anything with one it closes: its address's rate, then its address's open connections, then the server's
 * places (connection-places.ts). A connection let through holds its address's place and a server place until it
 * closes.
 */
export function limitNewConnections(
  server: Server,
  limits: { readonly rate: AddressRate; readonly slots: AddressSlots; readonly places: ConnectionPlaces },
  reports: ConnectionReports,
): void {
  const { rate, slots, places } = limits;
  server.prependListener('connection', (socket: Socket) => {
    if (!rate.admit(socket.remoteAddress)) {
      reports.onRateLimited();
      socket.destroy();
      return;
    }
    const release = slots.take(socket.remoteAddress);
    if (release === undefined) {
      reports.onAddressFull();
      socket.destroy();
      return;
    }
    socket.once('close', release);
    const admission = places.admit(socket);
    if (admission === 'replaced') reports.onReplaced();
    if (admission !== 'refused') return;
    reports.onFull();
    socket.destroy();
  });
}

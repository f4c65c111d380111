// The server's places for connections: at most `maxConnections` open at once. A connection is a stranger's until it
// proves to be a trusted controller's — by a client certificate of a trusted key (mutual TLS), or by a command that
// passed every check (a valid signature, for this host, in its time, never seen before). Strangers give up their
// places to newer connections; controllers never do:
// - one address (an IPv6 one by its /64) holds at most `perAddress` strangers' connections: past it, its new one takes
//   the place of its own oldest stranger's;
// - past `maxConnections`, a new connection takes the place of the oldest stranger's of all, which is closed; only
//   when every place is a controller's is the new connection refused.
// So strangers, from however many addresses, never hold a place a newer connection wants for longer than it takes that
// many newer ones to come, and a controller's proven connections are never closed to make room. A controller's new
// connection is a stranger until its proof (a handshake's milliseconds, or its first command): the newest one, so the
// last to go.
import { addressKey } from './address-rate.js';

/** What a connection can be known by on either side of TLS: the raw socket and the TLS socket share these. */
export interface Peer {
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
}

/** What a place needs of a connection's socket (a net.Socket is one). */
export interface PlacedSocket extends Peer {
  destroy(): void;
  once(event: 'close', listener: () => void): unknown;
}

/**
 * `admitted` to a free place; `replaced`: into the place of the oldest stranger's of all (that one closed);
 * `replaced_own`: into the place of its own address's oldest stranger's; `refused`: every place a controller's (the
 * caller closes it); `gone`: closed before it was accepted.
 */
export type Admission = 'admitted' | 'replaced' | 'replaced_own' | 'refused' | 'gone';

export interface ConnectionPlaces {
  /** A new connection; one admitted holds its place until it closes. */
  admit(socket: PlacedSocket): Admission;
  /** The connection of `peer` is a trusted controller's: its place is never given to another. */
  trust(peer: Peer | undefined): void;
  /** Whether the connection of `peer` was proven a controller's (`trust`); false for one unknown here. */
  trusted(peer: Peer | undefined): boolean;
  readonly open: number;
}

const keyOf = (peer: Peer): string => `${peer.remoteAddress ?? ''}|${peer.remotePort ?? ''}`;

interface Place {
  readonly socket: PlacedSocket;
  readonly key: string;
  readonly address: string;
  trusted: boolean;
}

export function createConnectionPlaces(maxConnections: number, perAddress: number): ConnectionPlaces {
  // In the order the connections came: the first stranger found is the oldest.
  const places = new Map<string, Place>();
  /** strangers' connections per address; an address with none has no entry (bounded by the connections open) */
  const strangers = new Map<string, number>();
  const countStranger = (address: string, by: number): void => {
    const count = (strangers.get(address) ?? 0) + by;
    if (count > 0) strangers.set(address, count);
    else strangers.delete(address);
  };
  const oldestStranger = (address?: string): Place | undefined => {
    for (const place of places.values()) {
      if (!place.trusted && (address === undefined || place.address === address)) return place;
    }
    return undefined;
  };
  /** Gives up `place`, and a stranger's count with it: its connection is gone, or going. */
  const release = (place: Place): void => {
    places.delete(place.key);
    if (!place.trusted) countStranger(place.address, -1);
  };
  const evict = (place: Place): void => {
    release(place);
    place.socket.destroy();
  };
  return {
    admit(socket) {
      // Gone before it was accepted: nothing to hold a place for.
      if (socket.remoteAddress === undefined) return 'gone';
      const address = addressKey(socket.remoteAddress);
      const key = keyOf(socket);
      // A connection of the same address and port whose close has not been heard yet (a reset, then the same port
      // at once): the kernel is done with it, and so are its place and its count.
      const stale = places.get(key);
      if (stale !== undefined) evict(stale);
      let admission: Admission = 'admitted';
      const own = (strangers.get(address) ?? 0) >= perAddress ? oldestStranger(address) : undefined;
      if (own !== undefined) {
        evict(own);
        admission = 'replaced_own';
      } else if (places.size >= maxConnections) {
        const stranger = oldestStranger();
        if (stranger === undefined) return 'refused';
        evict(stranger);
        admission = 'replaced';
      }
      const place: Place = { socket, key, address, trusted: false };
      places.set(key, place);
      countStranger(address, 1);
      socket.once('close', () => {
        // Only its own place: one replaced may have been given to a later connection from the same address and port.
        if (places.get(key) === place) release(place);
      });
      return admission;
    },
    trust(peer) {
      if (peer === undefined) return;
      const place = places.get(keyOf(peer));
      if (place === undefined || place.trusted) return;
      place.trusted = true;
      countStranger(place.address, -1);
    },
    trusted(peer) {
      return peer !== undefined && places.get(keyOf(peer))?.trusted === true;
    },
    get open() {
      return places.size;
    },
  };
}

// The server's places for connections: at most `maxConnections` open at once. A connection is a stranger's until it
// proves to be a trusted controller's — by a client certificate of a trusted key (mutual TLS) or by a command whose
// signature verified. A new connection past the limit takes the place of the oldest stranger's, which is closed;
// only when every open connection is a trusted one's is the new connection closed instead. So strangers, from however
// many addresses, can never hold every place: a controller's new connection always gets one.
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

export type Admission = 'admitted' | 'replaced' | 'refused';

export interface ConnectionPlaces {
  /**
   * A new connection: admitted to a free place, or to a stranger's (`replaced`: that connection is closed), or
   * `refused` (the caller closes it) when every place is a trusted one's. An admitted connection holds its place until
   * it closes.
   */
  admit(socket: PlacedSocket): Admission;
  /** The connection of `peer` is a trusted controller's: its place is never given to another. */
  trust(peer: Peer | undefined): void;
  readonly open: number;
}

const keyOf = (peer: Peer): string => `${peer.remoteAddress ?? ''}|${peer.remotePort ?? ''}`;

interface Place {
  readonly socket: PlacedSocket;
  readonly key: string;
  trusted: boolean;
}

export function createConnectionPlaces(maxConnections: number): ConnectionPlaces {
  // In the order the connections came: the first stranger found is the oldest.
  const places = new Map<string, Place>();
  const oldestStranger = (): Place | undefined => {
    for (const place of places.values()) if (!place.trusted) return place;
    return undefined;
  };
  return {
    admit(socket) {
      // Gone before it was accepted: nothing to hold a place for.
      if (socket.remoteAddress === undefined) return 'refused';
      let admission: Admission = 'admitted';
      if (places.size >= maxConnections) {
        const stranger = oldestStranger();
        if (stranger === undefined) return 'refused';
        places.delete(stranger.key);
        stranger.socket.destroy();
        admission = 'replaced';
      }
      const key = keyOf(socket);
      const place: Place = { socket, key, trusted: false };
      places.set(key, place);
      socket.once('close', () => {
        // Only its own place: one replaced may have been given to a later connection from the same address and port.
        if (places.get(key) === place) places.delete(key);
      });
      return admission;
    },
    trust(peer) {
      if (peer === undefined) return;
      const place = places.get(keyOf(peer));
      if (place !== undefined) place.trusted = true;
    },
    get open() {
      return places.size;
    },
  };
}

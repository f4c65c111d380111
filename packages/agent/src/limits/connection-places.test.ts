// The server's places for connections: strangers give theirs up to new connections, trusted controllers never do.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { createConnectionPlaces } from './connection-places.js';

/** Enough of a socket: an address and port, a close that destroy() brings (later, as Node's does). */
class FakeSocket extends EventEmitter {
  destroyed = false;
  constructor(
    readonly remoteAddress: string | undefined,
    readonly remotePort: number,
  ) {
    super();
  }
  destroy(): this {
    if (!this.destroyed) {
      this.destroyed = true;
      setImmediate(() => this.emit('close'));
    }
    return this;
  }
}

let port = 40_000;
const socket = (address = '192.0.2.1'): FakeSocket => new FakeSocket(address, port++);
const closed = (s: FakeSocket): Promise<unknown> => new Promise((resolve) => s.once('close', resolve));

test('past the limit the oldest stranger gives up its place; a trusted connection never does', async () => {
  const places = createConnectionPlaces(3);
  const [a, b, c] = [socket(), socket(), socket('192.0.2.2')];
  for (const s of [a, b, c]) assert.equal(places.admit(s), 'admitted');
  places.trust(a);
  const d = socket();
  assert.equal(places.admit(d), 'replaced');
  assert.equal(b.destroyed, true, 'b: the oldest stranger (a is trusted)');
  assert.equal(a.destroyed || c.destroyed, false);
  assert.equal(places.open, 3);
  await closed(b);
  assert.equal(places.open, 3, "b's close frees nothing: its place is d's");
  places.trust(c);
  places.trust(d);
  const e = socket();
  assert.equal(places.admit(e), 'refused', 'every place a trusted one');
  assert.equal(e.destroyed, false, 'the caller closes it');
  a.destroy();
  await closed(a);
  assert.equal(places.open, 2);
  assert.equal(places.admit(socket()), 'admitted', 'a trusted connection that closed frees its place');
});

test('trust is by address and port, which the TLS socket shares with the raw one; unknown peers change nothing', () => {
  const places = createConnectionPlaces(1);
  const raw = socket('198.51.100.7');
  places.admit(raw);
  places.trust(undefined);
  places.trust({ remoteAddress: '198.51.100.7', remotePort: raw.remotePort + 1 });
  places.trust({ remoteAddress: '198.51.100.8', remotePort: raw.remotePort });
  assert.equal(places.admit(socket()), 'replaced', 'still a stranger');
  const kept = socket('198.51.100.7');
  places.admit(kept);
  places.trust({ remoteAddress: kept.remoteAddress, remotePort: kept.remotePort });
  assert.equal(places.admit(socket()), 'refused');
});

test('a connection gone before it was accepted takes no place', () => {
  const places = createConnectionPlaces(1);
  assert.equal(places.admit(new FakeSocket(undefined, port++)), 'refused');
  assert.equal(places.open, 0);
});

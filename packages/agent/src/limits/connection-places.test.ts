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
const ANY = 1000;

test('past the limit the oldest stranger gives up its place; a trusted connection never does', async () => {
  const places = createConnectionPlaces(3, ANY);
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

test("an address holds at most so many strangers' places: its new connection takes its own oldest one's, never another's or a controller's", async () => {
  const places = createConnectionPlaces(ANY, 2);
  const controller = socket('2001:db8:1:2::1');
  places.admit(controller);
  places.trust(controller);
  const [s1, s2] = [socket('2001:db8:1:2::a'), socket('2001:db8:1:2::b')];
  const other = socket('198.51.100.9');
  for (const s of [s1, s2, other]) assert.equal(places.admit(s), 'admitted');
  // The same /64, a third stranger: the address's oldest stranger goes, not the controller's connection from it.
  const s3 = socket('2001:db8:1:2::c');
  assert.equal(places.admit(s3), 'replaced_own');
  assert.deepEqual(
    [controller, s1, s2, other, s3].map((s) => s.destroyed),
    [false, true, false, false, false],
  );
  // A controller's proven connections do not count: its address admits two strangers besides.
  places.trust(s2);
  assert.equal(places.admit(socket('2001:db8:1:2::d')), 'admitted');
  await closed(s1);
  assert.equal(places.open, 5);
});

test('trust is by address and port, which the TLS socket shares with the raw one; unknown peers change nothing', () => {
  const places = createConnectionPlaces(1, ANY);
  const raw = socket('198.51.100.7');
  places.admit(raw);
  places.trust(undefined);
  places.trust({ remoteAddress: '198.51.100.7', remotePort: raw.remotePort + 1 });
  places.trust({ remoteAddress: '198.51.100.8', remotePort: raw.remotePort });
  assert.equal(places.admit(socket()), 'replaced', 'still a stranger');
  const kept = socket('198.51.100.7');
  places.admit(kept);
  places.trust({ remoteAddress: kept.remoteAddress, remotePort: kept.remotePort });
  places.trust({ remoteAddress: kept.remoteAddress, remotePort: kept.remotePort });
  assert.equal(places.admit(socket()), 'refused');
});

test('a connection gone before it was accepted takes no place and is no refusal', () => {
  const places = createConnectionPlaces(1, ANY);
  assert.equal(places.admit(new FakeSocket(undefined, port++)), 'gone');
  assert.equal(places.open, 0);
});

test("a controller's place counts once: trusted twice, closed, it gives back nothing it did not take", async () => {
  const places = createConnectionPlaces(ANY, 1);
  const controller = socket('203.0.113.1');
  places.admit(controller);
  places.trust(controller);
  places.trust(controller);
  const first = socket('203.0.113.1');
  assert.equal(places.admit(first), 'admitted', 'the controller is not counted');
  controller.destroy();
  await closed(controller);
  assert.equal(places.admit(socket('203.0.113.1')), 'replaced_own', 'one stranger is all the address may hold');
  assert.equal(first.destroyed, true);
});

test('a connection whose close is not heard yet, its address and port taken again, gives up its place and its count', () => {
  const places = createConnectionPlaces(ANY, 1);
  const reset = new FakeSocket('203.0.113.2', 50_000);
  places.admit(reset);
  const again = new FakeSocket('203.0.113.2', 50_000);
  assert.equal(places.admit(again), 'admitted', 'not counted twice');
  assert.equal(reset.destroyed, true);
  assert.equal(places.open, 1);
});

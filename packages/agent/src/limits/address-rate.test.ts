import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addressKey, createAddressRate } from './address-rate.js';

/** A rate on a clock the test moves. */
function clocked(perSecond: number, burst: number, maxAddresses?: number) {
  const clock = { now: 1_000_000 };
  const rate = createAddressRate({
    perSecond,
    burst,
    now: () => clock.now,
    ...(maxAddresses === undefined ? {} : { maxAddresses }),
  });
  const admitted = (address: string, times: number): number =>
    Array.from({ length: times }, () => rate.admit(address)).filter(Boolean).length;
  return { clock, rate, admitted };
}

test('a burst at once, then the rate: each address on its own bucket', () => {
  const { clock, admitted } = clocked(10, 5);
  assert.equal(admitted('192.0.2.1', 20), 5, 'the burst, nothing more at the same instant');
  assert.equal(admitted('192.0.2.2', 3), 3, 'another address is not held back');
  clock.now += 99;
  assert.equal(admitted('192.0.2.1', 1), 0, 'less than a token in 99 ms at 10 a second');
  clock.now += 1;
  assert.equal(admitted('192.0.2.1', 5), 1, 'one token after 100 ms');
  clock.now += 60_000;
  assert.equal(admitted('192.0.2.1', 20), 5, 'a quiet minute refills to the burst, not past it');
});

test('IPv6 is limited by its /64 (a host holds a whole one), IPv4-mapped as the IPv4 address', () => {
  assert.equal(addressKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  assert.equal(addressKey('2001:0db8:0001:0002:ffff:1:2:3'), '2001:db8:1:2::/64');
  assert.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
  assert.equal(addressKey('::1'), '0:0:0:0::/64');
  assert.equal(addressKey('::ffff:192.0.2.7'), '192.0.2.7');
  assert.equal(addressKey('192.0.2.7'), '192.0.2.7');
  assert.equal(addressKey(undefined), 'unknown');
  const { admitted } = clocked(1, 2);
  assert.equal(admitted('2001:db8:1:2::a', 1) + admitted('2001:db8:1:2::b', 1) + admitted('2001:db8:1:2::c', 1), 2);
});

test('memory stays bounded: idle buckets are dropped, and new addresses past the table share one bucket', () => {
  const { clock, rate, admitted } = clocked(1, 2, 3);
  for (const address of ['192.0.2.1', '192.0.2.2', '192.0.2.3']) assert.equal(admitted(address, 2), 2);
  assert.equal(rate.tracked, 3);
  // The table is full of active buckets: new addresses share the overflow bucket (2 tokens for all of them).
  assert.equal(admitted('198.51.100.1', 1) + admitted('198.51.100.2', 1) + admitted('198.51.100.3', 1), 2);
  assert.equal(rate.tracked, 4, 'three addresses and the shared bucket');
  // Once refilled, idle buckets are dropped to make room: a new address gets its own bucket again.
  clock.now += 10_000;
  assert.equal(admitted('203.0.113.9', 2), 2);
  assert.ok(rate.tracked <= 3);
});

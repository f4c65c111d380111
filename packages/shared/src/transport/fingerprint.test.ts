import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { generateSigningKey } from '../envelope/keys.js';
import { isExpectedKey, keyFingerprint, parseExpectedKey } from './fingerprint.js';
import { isLoopbackHost } from './loopback.js';

describe('keyFingerprint', () => {
  it('is sha256: and the hex SHA-256 of the 32 raw key bytes', () => {
    const key = generateSigningKey();
    const fingerprint = keyFingerprint(key.publicKey);
    assert.match(fingerprint, /^sha256:[0-9a-f]{64}$/);
    const raw = Buffer.from(key.publicKey, 'base64');
    assert.equal(fingerprint, `sha256:${createHash('sha256').update(raw).digest('hex')}`);
    // The keyId is its first 16 hex digits.
    assert.equal(fingerprint.slice('sha256:'.length, 'sha256:'.length + 16), key.keyId);
  });
});

describe('parseExpectedKey', () => {
  const key = generateSigningKey();
  const fingerprint = keyFingerprint(key.publicKey);

  it('takes the base64 public key or the full fingerprint, and both match the key', () => {
    for (const text of [key.publicKey, fingerprint, fingerprint.toUpperCase().replace('SHA256', 'sha256')]) {
      const parsed = parseExpectedKey(text);
      assert.ok(parsed.ok, text);
      assert.equal(parsed.value.fingerprint, fingerprint);
      assert.equal(isExpectedKey(parsed.value, key.publicKey), true);
      assert.equal(isExpectedKey(parsed.value, generateSigningKey().publicKey), false);
    }
  });

  it('refuses a keyId, saying why it cannot pin', () => {
    const parsed = parseExpectedKey(key.keyId);
    assert.ok(!parsed.ok);
    assert.match(parsed.error, /is a keyId: 64 bits are too few to pin a key/);
  });

  it('refuses a short fingerprint, a key of the wrong length, and garbage', () => {
    for (const text of [fingerprint.slice(0, 40), Buffer.alloc(31).toString('base64'), 'kvm-01', '']) {
      assert.equal(parseExpectedKey(text).ok, false, text);
    }
  });
});

describe('isLoopbackHost', () => {
  it('knows 127.0.0.0/8, ::1 and localhost, and nothing else', () => {
    const loopback = ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1', 'LOCALHOST'];
    // A URL writes an IPv4-mapped address in hex.
    loopback.push(new URL('http://[::ffff:127.0.0.1]:1').hostname, '0:0:0:0:0:0:0:1');
    for (const host of loopback) {
      assert.equal(isLoopbackHost(host), true, host);
    }
    const network = [
      '10.0.0.11',
      '0.0.0.0',
      '::',
      '[::]',
      'kvm-01',
      '128.0.0.1',
      '127.0.0.1.example.com',
      '',
      '::ffff:a00:1',
    ];
    for (const host of network) {
      assert.equal(isLoopbackHost(host), false, host);
    }
  });
});

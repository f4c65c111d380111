// The key's own certificate: deterministic, well-formed, self-signed, and what TLS peers accept and refuse with it.
import assert from 'node:assert/strict';
import { createHash, createPublicKey, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { generateSigningKey, rawFromPublicKey, signingKeyFromPem } from '../envelope/keys.js';
import { certificateFor, certificatePublicKey, checkCertificate, tlsIdentity } from './certificate.js';

// RFC 8032 §7.1 test 1: a fixed key, so the certificate is a fixed value.
const RFC_PEM = `-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g
-----END PRIVATE KEY-----
`;

describe('certificateFor', () => {
  it('gives the same bytes for the same key, other bytes for another key', () => {
    const key = generateSigningKey();
    assert.equal(certificateFor(key), certificateFor(signingKeyFromPem(key.pem)));
    assert.notEqual(certificateFor(key), certificateFor(generateSigningKey()));
    assert.equal(certificateFor(signingKeyFromPem(RFC_PEM)), certificateFor(signingKeyFromPem(RFC_PEM)));
  });

  it('parses as X.509 v3 for the key, self-signed, CA, for servers and clients, 2000 to 9999', () => {
    const key = signingKeyFromPem(RFC_PEM);
    const certificate = new X509Certificate(certificateFor(key));
    assert.equal(certificate.subject, `CN=hostfiles ${key.keyId}`);
    assert.equal(certificate.issuer, certificate.subject);
    assert.equal(certificate.ca, true);
    assert.deepEqual(certificate.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    assert.equal(new Date(certificate.validFrom).toISOString(), '2000-01-01T00:00:00.000Z');
    assert.equal(new Date(certificate.validTo).toISOString(), '9999-12-31T23:59:59.000Z');
    assert.equal(certificatePublicKey(certificate), key.publicKey);
    assert.equal(certificate.verify(createPublicKey(key.privateKey)), true);
    assert.equal(certificate.verify(createPublicKey(generateSigningKey().privateKey)), false);
    assert.equal(certificate.checkIssued(certificate), true);
    // The serial: the first 16 bytes of SHA-256 over the SPKI, top bit cleared (a positive INTEGER).
    const serial = createHash('sha256').update(certificate.publicKey.export({ format: 'der', type: 'spki' }));
    const expected = serial.digest().subarray(0, 16);
    expected[0] = (expected[0] ?? 0) & 0x7f;
    assert.equal(BigInt(`0x${certificate.serialNumber}`), BigInt(`0x${expected.toString('hex')}`));
  });
});

describe('checkCertificate', () => {
  it("accepts exactly the key's own certificate", () => {
    const key = generateSigningKey();
    const checked = checkCertificate(certificateFor(key), key.publicKey);
    assert.ok(checked.ok);
    assert.equal(rawFromPublicKey(checked.value.publicKey).toString('base64'), key.publicKey);
  });

  it("refuses another key's certificate, garbage, and a certificate with a forged signature", () => {
    const key = generateSigningKey();
    const other = generateSigningKey();
    assert.deepEqual(checkCertificate(certificateFor(other), key.publicKey), {
      ok: false,
      error: 'its key is not the expected key',
    });
    assert.deepEqual(checkCertificate('not a certificate', key.publicKey), {
      ok: false,
      error: 'not an X.509 certificate',
    });
    const der = new X509Certificate(certificateFor(key)).raw;
    der[der.length - 1] = (der[der.length - 1] ?? 0) ^ 1;
    const forged = `-----BEGIN CERTIFICATE-----\n${der.toString('base64')}\n-----END CERTIFICATE-----\n`;
    assert.deepEqual(checkCertificate(forged, key.publicKey), {
      ok: false,
      error: 'its self-signature does not verify',
    });
  });
});

/** A TLS 1.3 server for `server`'s certificate; a client trusting `trusted`'s certificate alone connects to it. */
async function handshake(
  server: ReturnType<typeof generateSigningKey>,
  trusted: ReturnType<typeof generateSigningKey>,
): Promise<{ authorized: boolean; error?: string }> {
  const listener = createServer({ ...tlsIdentity(server), minVersion: 'TLSv1.3' }, (socket) => socket.end());
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  try {
    const socket: TLSSocket = connect({
      host: '127.0.0.1',
      port: (listener.address() as AddressInfo).port,
      ca: certificateFor(trusted),
      // Agents are reached by IP: the pin is the key, not a name.
      checkServerIdentity: () => undefined,
      minVersion: 'TLSv1.3',
    });
    return await new Promise((resolve) => {
      socket.once('secureConnect', () => {
        resolve({ authorized: socket.authorized });
        socket.destroy();
      });
      socket.once('error', (error: NodeJS.ErrnoException) => {
        resolve({ authorized: false, error: error.code ?? error.message });
      });
    });
  } finally {
    listener.close();
  }
}

describe('the certificate in TLS', () => {
  it('a client whose only CA is the certificate connects; one trusting another key is refused', async () => {
    const key = generateSigningKey();
    assert.deepEqual(await handshake(key, key), { authorized: true });
    assert.deepEqual(await handshake(key, generateSigningKey()), {
      authorized: false,
      error: 'DEPTH_ZERO_SELF_SIGNED_CERT',
    });
  });
});

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { auditVariableStore, type StoreAudit } from './audit.js';
import { GLOBAL_VARIABLE_GUID, IMAGE_SECURITY_DATABASE_GUID, SECURE_BOOT_ENABLE_GUID } from './guid.js';
import {
  buildVariableStore,
  certificateDer,
  sha256List,
  x509List,
  type TestCertificate,
  type TestVariable,
} from './test-support.js';

const list = (...names: TestCertificate[]): Buffer => Buffer.concat(names.map((n) => x509List(certificateDer(n))));
const PK = (data = list('pk'), state?: number): TestVariable => ({
  name: 'PK',
  vendor: GLOBAL_VARIABLE_GUID,
  data,
  ...(state === undefined ? {} : { state }),
});
const KEK = (...names: TestCertificate[]): TestVariable => ({
  name: 'KEK',
  vendor: GLOBAL_VARIABLE_GUID,
  data: list(...names),
});
const db = (names: TestCertificate[], state?: number): TestVariable => ({
  name: 'db',
  vendor: IMAGE_SECURITY_DATABASE_GUID,
  data: list(...names),
  ...(state === undefined ? {} : { state }),
});
const enable = (value: number): TestVariable => ({
  name: 'SecureBootEnable',
  vendor: SECURE_BOOT_ENABLE_GUID,
  data: Buffer.from([value]),
});
/** The audits' clock, unless a test says otherwise: the stand-in CAs end on 2036-11-28. */
const NOW = Date.UTC(2026, 11, 2);
const audit = (variables: TestVariable[], authenticated = true, now = NOW): StoreAudit =>
  auditVariableStore(buildVariableStore(variables, { authenticated }), now);
const cas = (result: StoreAudit): string[] => result.certificates.flatMap((c) => c.microsoftCa ?? []);

const ALL_2011: TestCertificate[] = ['pca2011', 'uefi2011'];
const ALL_2023: TestCertificate[] = ['windows2023', 'uefi2023'];

test('the 2023 CAs beside the 2011 ones: ok, every certificate listed with subject and expiry', () => {
  const result = audit([PK(), KEK('kek2011', 'kek2023'), db([...ALL_2011, ...ALL_2023]), enable(1)]);
  assert.equal(result.state, 'ok', result.reason);
  assert.equal(result.secureBoot, true);
  assert.deepEqual(result.missing, []);
  assert.deepEqual(
    result.certificates.map((c) => [c.variable, c.subject]),
    [
      ['PK', 'CN=Test Platform Key, O=hostfiles tests'],
      ['KEK', 'CN=Microsoft Corporation KEK CA 2011, O=Microsoft Corporation, L=Redmond, ST=Washington, C=US'],
      ['KEK', 'CN=Microsoft Corporation KEK 2K CA 2023, O=Microsoft Corporation, C=US'],
      ['db', 'CN=Microsoft Windows Production PCA 2011, O=Microsoft Corporation, L=Redmond, ST=Washington, C=US'],
      ['db', 'CN=Microsoft Corporation UEFI CA 2011, O=Microsoft Corporation, L=Redmond, ST=Washington, C=US'],
      ['db', 'CN=Windows UEFI CA 2023, O=Microsoft Corporation, C=US'],
      ['db', 'CN=Microsoft UEFI CA 2023, O=Microsoft Corporation, C=US'],
    ],
  );
  const [pk] = result.certificates;
  assert.ok(pk);
  assert.match(pk.notAfter, /^20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/);
  assert.equal(pk.sha256, createHash('sha256').update(certificateDer('pk')).digest('hex'));
  assert.equal(pk.owner, '77fa9abd-0359-4d32-bd60-28f4e78f784b');
});

test('only the 2023 CAs: ok', () => {
  assert.equal(audit([PK(), KEK('kek2023'), db(ALL_2023)]).state, 'ok');
});

test('only the 2011 CAs: update_available, naming the 2023 CAs to enroll', () => {
  const result = audit([PK(), KEK('kek2011'), db(ALL_2011)]);
  assert.equal(result.state, 'update_available');
  assert.deepEqual(result.missing, [
    'Microsoft Corporation KEK 2K CA 2023 (KEK)',
    'Windows UEFI CA 2023 (db)',
    'Microsoft UEFI CA 2023 (db)',
  ]);
  assert.equal(
    result.reason,
    'the 2023 CAs are missing: ' +
      'Microsoft Corporation KEK 2K CA 2023 (KEK), for Microsoft Corporation KEK CA 2011, expires on 2036-11-28; ' +
      'Windows UEFI CA 2023 (db), for Microsoft Windows Production PCA 2011, expires on 2036-11-28; ' +
      'Microsoft UEFI CA 2023 (db), for Microsoft Corporation UEFI CA 2011, expires on 2036-11-28',
  );
  // By the audit's clock: past the end date, the same CAs are said to have expired, on that date.
  const later = audit([PK(), KEK('kek2011'), db(ALL_2011)], true, Date.UTC(2036, 11, 1));
  assert.deepEqual([later.state, later.missing], [result.state, result.missing]);
  assert.match(later.reason, /for Microsoft Corporation KEK CA 2011, expired on 2036-11-28; /);
  assert.doesNotMatch(later.reason, /expires/);
});

test('the new KEK enrolled but db still on the 2011 CAs: update_available for db only', () => {
  const result = audit([PK(), KEK('kek2011', 'kek2023'), db(['pca2011', 'uefi2011', 'windows2023'])]);
  assert.equal(result.state, 'update_available');
  assert.deepEqual(result.missing, ['Microsoft UEFI CA 2023 (db)']);
});

test("a CA's name from another organisation, or in the wrong variable, is no Microsoft CA", () => {
  const result = audit([PK(), KEK('pca2011', 'windows2023'), db(['spoof', 'kek2023'])]);
  assert.deepEqual(cas(result), []);
  assert.equal(result.state, 'not_applicable');
  assert.equal(result.reason, 'no Microsoft CA is enrolled');
});

test('secure boot: on with a PK unless SecureBootEnable says 0; off without a PK, whatever KEK and db hold', () => {
  assert.equal(audit([PK(), KEK('kek2011'), db(ALL_2011), enable(1)]).secureBoot, true);
  const disabled = audit([PK(), KEK('kek2011'), db(ALL_2011), enable(0)]);
  assert.deepEqual(
    [disabled.secureBoot, disabled.state, disabled.reason],
    [false, 'not_applicable', 'secure boot is off'],
  );
  assert.deepEqual(cas(disabled), [
    'Microsoft Corporation KEK CA 2011',
    ...['Microsoft Windows Production PCA 2011', 'Microsoft Corporation UEFI CA 2011'],
  ]);
  const noPk = audit([KEK('kek2011'), db(ALL_2011), enable(1)]);
  assert.deepEqual([noPk.secureBoot, noPk.state], [false, 'not_applicable']);
  assert.equal(audit([PK(Buffer.alloc(0)), KEK('kek2011')]).secureBoot, false, 'an empty PK is no PK');
});

test('variable states as edk2 reads them: deleted copies are skipped; one in deleted transition counts until its successor is added', () => {
  const deletedPk = audit([PK(list('pk'), 0x3c), KEK('kek2011'), db(ALL_2011)]);
  assert.equal(deletedPk.secureBoot, false, 'a deleted PK is no PK');
  const headerOnly = audit([PK(list('pk'), 0x7f), KEK('kek2011'), db(ALL_2011)]);
  assert.equal(headerOnly.secureBoot, false, 'a PK whose write never completed is no PK');
  // db replaced: the old copy in deleted transition, the new one added after it; the new one is read.
  const replaced = audit([PK(), KEK('kek2023'), db(ALL_2011, 0x3e), db(ALL_2023)]);
  assert.equal(replaced.state, 'ok');
  assert.deepEqual(cas(replaced), [
    'Microsoft Corporation KEK 2K CA 2023',
    'Windows UEFI CA 2023',
    'Microsoft UEFI CA 2023',
  ]);
  // The replacement cut short: only the copy in deleted transition is there, and it counts.
  const cut = audit([PK(), KEK('kek2011'), db(ALL_2011, 0x3e)]);
  assert.equal(cut.state, 'update_available');
  assert.equal(cut.certificates.filter((c) => c.variable === 'db').length, 2);
});

test('a store of plain (not authenticated) variable headers is read the same', () => {
  const result = audit([PK(), KEK('kek2011'), db(ALL_2011)], false);
  assert.equal(result.state, 'update_available');
  assert.equal(result.certificates.length, 4);
});

test('hashes: dbx entries are counted, a hash in db is no certificate', () => {
  const digests = [Buffer.alloc(32, 1), Buffer.alloc(32, 2), Buffer.alloc(32, 3)];
  const dbWithHash: TestVariable = {
    name: 'db',
    vendor: IMAGE_SECURITY_DATABASE_GUID,
    data: Buffer.concat([list('pca2011'), sha256List(digests.slice(0, 1))]),
  };
  const dbx: TestVariable = { name: 'dbx', vendor: IMAGE_SECURITY_DATABASE_GUID, data: sha256List(digests) };
  const result = audit([PK(), KEK('kek2011'), dbWithHash, dbx]);
  assert.equal(result.dbxEntries, 3);
  assert.deepEqual(
    result.certificates.filter((c) => c.variable === 'db').map((c) => c.microsoftCa),
    ['Microsoft Windows Production PCA 2011'],
  );
});

test('corrupt key variables: unreadable, with the reason, never a throw', () => {
  const der = certificateDer('pca2011');
  const badDer = x509List(Buffer.concat([der.subarray(0, 40), Buffer.alloc(der.length - 40, 0x41)]));
  const cases: [string, Buffer, RegExp][] = [
    ['cut short', list('pca2011').subarray(0, 20), /db: signature list 0 is cut short/],
    ['list size past the data', list('pca2011').subarray(0, 100), /db: signature list 0: bad size/],
    ['not a certificate', badDer, /db: signature list 0 holds no X\.509 certificate/],
  ];
  for (const [what, data, reason] of cases) {
    const result = audit([PK(), KEK('kek2011'), { name: 'db', vendor: IMAGE_SECURITY_DATABASE_GUID, data }]);
    assert.equal(result.state, 'unreadable', what);
    assert.match(result.reason, reason, what);
    assert.equal(result.secureBoot, null);
  }
  const zeroSize = Buffer.from(list('pca2011'));
  zeroSize.writeUInt32LE(0, 24);
  assert.match(audit([PK(zeroSize)]).reason, /PK: signature list 0: bad signature size 0/);
});

test('blank flash (all zeros or all 0xff, whole blocks) is a store the firmware will format: not applicable', () => {
  for (const fill of [0x00, 0xff]) {
    const result = auditVariableStore(Buffer.alloc(64 * 1024, fill), NOW);
    assert.deepEqual([result.state, result.secureBoot], ['not_applicable', false]);
    assert.match(result.reason, /blank variable store/);
  }
  assert.equal(auditVariableStore(Buffer.alloc(100), NOW).state, 'unreadable', 'a few zeros are no flash');
  assert.equal(auditVariableStore(Buffer.alloc(0), NOW).state, 'unreadable');
});

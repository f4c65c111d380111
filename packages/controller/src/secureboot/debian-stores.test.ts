// The audit over Debian's real variable stores (packages ovmf and qemu-efi-aarch64, installed by .ci/run), checked
// against an independent reader: every DER certificate found by scanning the raw bytes, read by `openssl x509`.
// Without the files (or openssl) the tests skip and say why; where CI sets HOSTFILES_REQUIRE_REAL_TOOLS they fail.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { test, type TestContext } from 'node:test';
import { auditVariableStore, type StoreAudit } from './audit.js';
import { fuzzStore } from './fuzz.js';
import { parseVariableStore } from './variable-store.js';

const OVMF = '/usr/share/OVMF';
const AAVMF = '/usr/share/AAVMF';

function skipWithout(t: TestContext, path: string, pkg: string): boolean {
  const missing = existsSync(path) ? undefined : `${path} is not installed (package ${pkg})`;
  if (missing === undefined) return false;
  if (process.env['HOSTFILES_REQUIRE_REAL_TOOLS'] === '1') assert.fail(`required here, but ${missing}`);
  t.skip(missing);
  return true;
}

interface Scanned {
  readonly sha256: string;
  readonly subject: string;
  readonly notAfter: string;
}

/**
 * The independent reader: each `SEQUENCE { SEQUENCE ...` with two-byte lengths that openssl accepts as a certificate,
 * wherever it sits in the file (it knows nothing of volumes, variables or signature lists).
 */
function scanCertificates(bytes: Buffer): Scanned[] {
  const found: Scanned[] = [];
  for (let at = bytes.indexOf('3082', 0, 'hex'); at >= 0; at = bytes.indexOf('3082', at + 1, 'hex')) {
    if (bytes.readUInt16BE(at + 4) !== 0x3082) continue;
    const der = bytes.subarray(at, at + 4 + bytes.readUInt16BE(at + 2));
    const args = ['x509', '-inform', 'der', '-noout', '-fingerprint', '-sha256', '-subject', '-enddate'];
    const out = spawnSync('openssl', [...args, '-nameopt', 'RFC2253'], { input: der, encoding: 'utf8' });
    if (out.error !== undefined) throw out.error;
    if (out.status !== 0) continue;
    const field = (name: string): string => new RegExp(`^${name}=(.*)$`, 'm').exec(out.stdout)?.[1] ?? '';
    found.push({
      sha256: field('sha256 Fingerprint').replaceAll(':', '').toLowerCase(),
      subject: field('subject'),
      notAfter: new Date(field('notAfter')).toISOString(),
    });
    at += der.length - 1;
  }
  return found;
}

/** The parser's certificates as the scan sees them: RFC 2253 has no blank after the comma. */
const asScanned = (audit: StoreAudit): Scanned[] =>
  audit.certificates.map((c) => ({ sha256: c.sha256, subject: c.subject.replaceAll(', ', ','), notAfter: c.notAfter }));
const bySha = (a: Scanned, b: Scanned): number => a.sha256.localeCompare(b.sha256);

const DEBIAN_PK = 'emailAddress=debian-devel@lists.debian.org, CN=Debian UEFI Secure Boot (PK/KEK key), O=Debian';
const MS = 'O=Microsoft Corporation, L=Redmond, ST=Washington, C=US';
/** What Debian's `.ms.fd` stores hold (bookworm, 2022.11-6+deb12u2): Debian's PK, Microsoft's 2011 CAs only. */
const MS_ENROLLED = [
  ['PK', DEBIAN_PK, '2029-07-05'],
  ['KEK', DEBIAN_PK, '2029-07-05'],
  ['KEK', `CN=Microsoft Corporation KEK CA 2011, ${MS}`, '2026-06-24'],
  ['db', `CN=Microsoft Windows Production PCA 2011, ${MS}`, '2026-10-19'],
  ['db', `CN=Microsoft Corporation UEFI CA 2011, ${MS}`, '2026-06-27'],
];

/** What the audit says of each 2011 CA those stores hold, by its clock: its end date, passed or not. */
const msReason = (kek: string, pca: string, uefi: string): string =>
  'the 2023 CAs are missing: ' +
  `Microsoft Corporation KEK 2K CA 2023 (KEK), for Microsoft Corporation KEK CA 2011, ${kek} 2026-06-24; ` +
  `Windows UEFI CA 2023 (db), for Microsoft Windows Production PCA 2011, ${pca} 2026-10-19; ` +
  `Microsoft UEFI CA 2023 (db), for Microsoft Corporation UEFI CA 2011, ${uefi} 2026-06-27`;
const KEK_CA_2011_END = Date.parse('2026-06-24T20:51:29Z');

function checkMsStore(bytes: Buffer): void {
  const audit = auditVariableStore(bytes, Date.UTC(2026, 0, 1));
  assert.equal(audit.state, 'update_available', audit.reason);
  assert.equal(audit.reason, msReason('expires on', 'expires on', 'expires on'));
  // The audit's clock either side of each end date: July 2026 (the KEK CA and the UEFI CA have expired, not the
  // PCA), then December; the KEK CA's last second is not yet expired, the next one is.
  assert.equal(
    auditVariableStore(bytes, Date.UTC(2026, 6, 1)).reason,
    msReason('expired on', 'expires on', 'expired on'),
  );
  assert.equal(
    auditVariableStore(bytes, Date.UTC(2026, 11, 2)).reason,
    msReason('expired on', 'expired on', 'expired on'),
  );
  assert.match(auditVariableStore(bytes, KEK_CA_2011_END).reason, /KEK CA 2011, expires on 2026-06-24; /);
  assert.match(auditVariableStore(bytes, KEK_CA_2011_END + 1000).reason, /KEK CA 2011, expired on 2026-06-24; /);
  assert.equal(audit.secureBoot, true);
  assert.deepEqual(
    audit.certificates.map((c) => [c.variable, c.subject, c.notAfter.slice(0, 10)]),
    MS_ENROLLED,
  );
  assert.deepEqual(audit.missing, [
    'Microsoft Corporation KEK 2K CA 2023 (KEK)',
    'Windows UEFI CA 2023 (db)',
    'Microsoft UEFI CA 2023 (db)',
  ]);
  assert.equal(audit.dbxEntries, 1);
  assert.deepEqual(asScanned(audit).sort(bySha), scanCertificates(bytes).sort(bySha), 'the same as the raw scan');
}

test(`${OVMF}/OVMF_VARS_4M.ms.fd: secure boot on, the 2011 CAs only: update_available; as openssl reads it`, (t) => {
  const path = `${OVMF}/OVMF_VARS_4M.ms.fd`;
  if (skipWithout(t, path, 'ovmf')) return;
  checkMsStore(readFileSync(path));
});

test(`${AAVMF}/AAVMF_VARS.ms.fd (64 MiB): the same keys, read in place`, (t) => {
  const path = `${AAVMF}/AAVMF_VARS.ms.fd`;
  if (skipWithout(t, path, 'qemu-efi-aarch64')) return;
  const bytes = readFileSync(path);
  assert.equal(bytes.length, 64 * 1024 * 1024);
  checkMsStore(bytes);
  const parsed = parseVariableStore(bytes);
  assert.ok(parsed.ok);
  for (const variable of parsed.value.variables) assert.equal(variable.data.buffer, bytes.buffer, variable.name);
});

test('the stores without keys: secure boot off, not applicable; the raw scan finds no certificate either', (t) => {
  const stores = [
    [`${OVMF}/OVMF_VARS_4M.fd`, 'ovmf', 'secure boot is off'],
    [`${AAVMF}/AAVMF_VARS.fd`, 'qemu-efi-aarch64', /^a blank variable store/],
  ] as const;
  for (const [path, pkg, reason] of stores) {
    if (skipWithout(t, path, pkg)) return;
    const bytes = readFileSync(path);
    const audit = auditVariableStore(bytes, Date.UTC(2026, 11, 2));
    assert.deepEqual([audit.state, audit.secureBoot, audit.certificates], ['not_applicable', false, []], path);
    assert.match(audit.reason, typeof reason === 'string' ? new RegExp(`^${reason}$`) : reason, path);
    assert.deepEqual(scanCertificates(bytes), [], path);
  }
});

test(`${OVMF}/OVMF_VARS_4M.snakeoil.fd: secure boot on with keys of its own: no Microsoft CA, not applicable`, (t) => {
  const path = `${OVMF}/OVMF_VARS_4M.snakeoil.fd`;
  if (skipWithout(t, path, 'ovmf')) return;
  const bytes = readFileSync(path);
  const audit = auditVariableStore(bytes, Date.UTC(2026, 11, 2));
  assert.deepEqual(
    [audit.state, audit.secureBoot, audit.reason],
    ['not_applicable', true, 'no Microsoft CA is enrolled'],
  );
  assert.deepEqual(
    audit.certificates.map((c) => c.variable),
    ['PK', 'KEK', 'db'],
  );
  assert.deepEqual(asScanned(audit).sort(bySha), scanCertificates(bytes).sort(bySha));
});

test(`fuzz ${OVMF}/OVMF_VARS_4M.ms.fd: cut, shortened and flipped at every offset in use, never a throw`, (t) => {
  const path = `${OVMF}/OVMF_VARS_4M.ms.fd`;
  if (skipWithout(t, path, 'ovmf')) return;
  const report = fuzzStore(readFileSync(path), { auditEvery: 101 });
  assert.ok(report.used > 20_000 && report.used < 0x40000, `${report.used} bytes in use`);
  assert.ok(report.states.has('unreadable') && report.states.has('update_available'), [...report.states].join());
});

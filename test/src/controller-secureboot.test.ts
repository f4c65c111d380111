// `hostfiles secureboot audit` end to end: Debian's real variable stores written onto a host through its agent,
// synced into the controller's backups (gzip), then audited by the real binary over that database. A corrupt store is
// reported for its VM alone; a VM whose NVRAM changed is audited on its newest stored copy.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { addVm, auditLiveNvram, auditStoredNvram, fileState, syncVm, writeFile } from '@hostfiles/controller';
import { hostfiles } from './support/cli.js';
import { withFleet, type Fleet } from './support/controller.js';
import { skipWithout } from './support/real-tools.js';

const MS = '/usr/share/OVMF/OVMF_VARS_4M.ms.fd';
const SNAKEOIL = '/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd';
const AAVMF_BLANK = '/usr/share/AAVMF/AAVMF_VARS.fd';
const AAVMF_MS = '/usr/share/AAVMF/AAVMF_VARS.ms.fd';
const STORES = [MS, SNAKEOIL, AAVMF_BLANK, AAVMF_MS];

interface AuditJson {
  readonly vms: readonly {
    readonly vmName: string;
    readonly hostName: string | null;
    readonly state: string;
    readonly reason: string;
    readonly secureBoot: boolean | null;
    readonly certificates: readonly { variable: string; subject: string; notAfter: string }[];
    readonly missing: readonly string[];
    readonly nvram: { sha256: string; size: number } | null;
  }[];
  readonly counts: Record<string, number>;
  readonly total: number;
}

/** A UEFI VM on host0 whose NVRAM is `bytes`, written through the agent and synced into the controller's backup. */
async function vmWithNvram(fleet: Fleet, name: string, bytes: Buffer): Promise<void> {
  await addVm(fleet.deps, { name, host: 'host0', bootMode: 'UEFI', secureBoot: true });
  const path = join(fleet.agents[0]?.setup.roots.NvRam ?? '', `${name}_VARS.fd`);
  await writeFile(fleet.deps, { vm: name, type: 'NvRam', path, state: fileState(bytes) });
  await syncVm(fleet.deps, name);
}

async function audit(fleet: Fleet): Promise<AuditJson> {
  const run = await hostfiles(['secureboot', 'audit', '--json', '--db', join(fleet.dir, 'hostfiles.db')]);
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout) as AuditJson;
}

test('secureboot audit over stored NVRAM: per VM state and certificates, fleet counts, a corrupt store alone unreadable', async (t) => {
  const absent = STORES.find((path) => !existsSync(path));
  if (skipWithout(t, absent === undefined ? undefined : `${absent} is not installed (ovmf, qemu-efi-aarch64)`)) return;
  await withFleet(1, async (fleet) => {
    await vmWithNvram(fleet, 'win-x86', readFileSync(MS));
    await vmWithNvram(fleet, 'win-arm', readFileSync(AAVMF_MS));
    await vmWithNvram(fleet, 'arm-fresh', readFileSync(AAVMF_BLANK));
    const corrupt = readFileSync(MS);
    corrupt.writeUInt32LE(0xffffff, 100 + 36); // the first variable's NameSize: it now runs past the store
    await vmWithNvram(fleet, 'broken', corrupt);
    await addVm(fleet.deps, { name: 'bios', host: 'host0', bootMode: 'Legacy', secureBoot: false });
    await addVm(fleet.deps, { name: 'unsynced', host: 'host0', bootMode: 'UEFI', secureBoot: true });

    const result = await audit(fleet);
    const byName = new Map(result.vms.map((vm) => [vm.vmName, vm]));
    assert.deepEqual(
      result.vms.map((vm) => [vm.vmName, vm.state, vm.secureBoot]),
      [
        ['arm-fresh', 'not_applicable', false],
        ['bios', 'not_applicable', null],
        ['broken', 'unreadable', null],
        ['unsynced', 'not_applicable', null],
        ['win-arm', 'update_available', true],
        ['win-x86', 'update_available', true],
      ],
    );
    assert.deepEqual(result.counts, { ok: 0, update_available: 2, not_applicable: 3, unreadable: 1 });
    assert.equal(result.total, 6);
    assert.equal(byName.get('broken')?.reason, 'the variable at offset 100 runs past the store');
    assert.match(byName.get('bios')?.reason ?? '', /legacy boot/);
    assert.match(byName.get('unsynced')?.reason ?? '', /no stored NVRAM/);
    const x86 = byName.get('win-x86');
    assert.ok(x86);
    assert.equal(x86.hostName, 'host0');
    assert.deepEqual(
      x86.certificates.filter((c) => c.variable !== 'PK').map((c) => [c.variable, c.subject.split(',')[0], c.notAfter]),
      [
        ['KEK', 'emailAddress=debian-devel@lists.debian.org', '2029-07-05T23:42:49.000Z'],
        ['KEK', 'CN=Microsoft Corporation KEK CA 2011', '2026-06-24T20:51:29.000Z'],
        ['db', 'CN=Microsoft Windows Production PCA 2011', '2026-10-19T18:51:42.000Z'],
        ['db', 'CN=Microsoft Corporation UEFI CA 2011', '2026-06-27T21:32:45.000Z'],
      ],
    );
    assert.deepEqual(byName.get('win-arm')?.certificates, x86.certificates, 'the AAVMF store holds the same keys');
    assert.equal(byName.get('win-arm')?.nvram?.size, 64 * 1024 * 1024);

    // The binary's clock is this machine's: each 2011 CA is said expired, or to expire, by it.
    const by = (end: string): string => (Date.parse(end) < Date.now() ? 'expired on' : 'expires on');
    assert.match(
      x86.reason,
      new RegExp(`for Microsoft Corporation UEFI CA 2011, ${by('2026-06-27T21:32:45Z')} 2026-06-27$`),
    );
    const table = await hostfiles(['secureboot', 'audit', '--db', join(fleet.dir, 'hostfiles.db')]);
    assert.equal(table.status, 0, table.stderr);
    assert.match(table.stdout, /^win-x86 +on +update_available +the 2023 CAs are missing: /m);
    const uefiEnd = by('2026-06-27T21:32:45Z') === 'expired on' ? '2026-06-27 \\(expired\\)' : '2026-06-27';
    assert.match(table.stdout, new RegExp(`^win-x86 +db +CN=Microsoft Corporation UEFI CA 2011, .* +${uefiEnd}$`, 'm'));
    assert.match(table.stdout, /^6 VMs: 0 ok, 2 update_available, 3 not_applicable, 1 unreadable$/m);
  });
});

test('secureboot audit says by its clock which 2011 CA has expired and which expires: the stored stores, either side of each end date', async (t) => {
  const absent = [MS, AAVMF_MS].find((path) => !existsSync(path));
  if (skipWithout(t, absent === undefined ? undefined : `${absent} is not installed (ovmf, qemu-efi-aarch64)`)) return;
  await withFleet(1, async (fleet) => {
    await vmWithNvram(fleet, 'win-x86', readFileSync(MS));
    await vmWithNvram(fleet, 'win-arm', readFileSync(AAVMF_MS));
    const reasons = async (at: number): Promise<string[]> => {
      const audit = await auditStoredNvram(fleet.deps.store, () => at);
      assert.equal(audit.at, at);
      return audit.vms.map((vm) => `${vm.vmName}: ${vm.reason}`);
    };
    const said = (kek: string, pca: string, uefi: string): string =>
      'the 2023 CAs are missing: ' +
      `Microsoft Corporation KEK 2K CA 2023 (KEK), for Microsoft Corporation KEK CA 2011, ${kek} 2026-06-24; ` +
      `Windows UEFI CA 2023 (db), for Microsoft Windows Production PCA 2011, ${pca} 2026-10-19; ` +
      `Microsoft UEFI CA 2023 (db), for Microsoft Corporation UEFI CA 2011, ${uefi} 2026-06-27`;
    const cases: [number, string][] = [
      [Date.UTC(2026, 0, 1), said('expires on', 'expires on', 'expires on')],
      [Date.UTC(2026, 6, 1), said('expired on', 'expires on', 'expired on')],
      [Date.UTC(2026, 9, 20), said('expired on', 'expired on', 'expired on')],
    ];
    for (const [at, reason] of cases) {
      assert.deepEqual(await reasons(at), [`win-arm: ${reason}`, `win-x86: ${reason}`], new Date(at).toISOString());
    }
    // --host: the files as they are now, by the flows' clock.
    const live = await auditLiveNvram({ ...fleet.deps, now: () => Date.UTC(2026, 6, 1) }, 'host0');
    assert.deepEqual(
      live.vms.map((vm) => vm.reason),
      [said('expired on', 'expires on', 'expired on'), said('expired on', 'expires on', 'expired on')],
    );
  });
});

test('secureboot audit reads the newest stored NVRAM: the VM re-enrolled and synced again is audited anew', async (t) => {
  const absent = [MS, SNAKEOIL].find((path) => !existsSync(path));
  if (skipWithout(t, absent === undefined ? undefined : `${absent} is not installed (package ovmf)`)) return;
  await withFleet(1, async (fleet) => {
    await vmWithNvram(fleet, 'vm', readFileSync(MS));
    assert.equal((await audit(fleet)).vms[0]?.state, 'update_available');
    // The guest's firmware rewrote its keys on the host (here: the snakeoil store in the same file), then a sync.
    const path = join(fleet.agents[0]?.setup.roots.NvRam ?? '', 'vm_VARS.fd');
    writeFileSync(path, readFileSync(SNAKEOIL));
    await syncVm(fleet.deps, 'vm');
    const [vm] = (await audit(fleet)).vms;
    assert.deepEqual([vm?.state, vm?.reason], ['not_applicable', 'no Microsoft CA is enrolled']);
    assert.equal(
      vm?.certificates.every((c) => c.subject.startsWith('O=SnakeOil')),
      true,
    );
  });
});

test('secureboot audit --host reads the files on the host now, through its agent; a file gone is unreadable for its VM', async (t) => {
  const absent = [MS, SNAKEOIL].find((path) => !existsSync(path));
  if (skipWithout(t, absent === undefined ? undefined : `${absent} is not installed (package ovmf)`)) return;
  await withFleet(1, async (fleet) => {
    await vmWithNvram(fleet, 'changed', readFileSync(MS));
    await vmWithNvram(fleet, 'gone', readFileSync(MS));
    await addVm(fleet.deps, { name: 'bios', host: 'host0', bootMode: 'Legacy', secureBoot: false });
    const root = fleet.agents[0]?.setup.roots.NvRam ?? '';
    writeFileSync(join(root, 'changed_VARS.fd'), readFileSync(SNAKEOIL)); // not synced: only the host has it
    unlinkSync(join(root, 'gone_VARS.fd'));
    const key = join(fleet.dir, 'controller.key');
    writeFileSync(key, fleet.key.privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
    const db = ['--db', join(fleet.dir, 'hostfiles.db'), '--key', key];

    const run = await hostfiles(['secureboot', 'audit', '--json', '--host', 'host0', ...db]);
    assert.equal(run.status, 0, run.stderr);
    const live = JSON.parse(run.stdout) as AuditJson & { source: string };
    assert.equal(live.source, 'live');
    assert.deepEqual(
      live.vms.map((vm) => [vm.vmName, vm.state, vm.nvram?.size ?? null]),
      [
        ['bios', 'not_applicable', null],
        ['changed', 'not_applicable', readFileSync(SNAKEOIL).length],
        ['gone', 'unreadable', null],
      ],
    );
    assert.equal(live.vms[1]?.reason, 'no Microsoft CA is enrolled');
    assert.match(live.vms[2]?.reason ?? '', /gone_VARS\.fd: not_found: /);
    // The stored copies are untouched: both still hold the 2011 CAs.
    const stored = await audit(fleet);
    assert.deepEqual(
      stored.vms.map((vm) => vm.state),
      ['not_applicable', 'update_available', 'update_available'],
    );

    const unknown = await hostfiles(['secureboot', 'audit', '--host', 'nohost', ...db]);
    assert.equal(unknown.status, 1, unknown.stderr);
    assert.match(unknown.stderr, /no host nohost/);
    await fleet.stop(0);
    const down = await hostfiles(['secureboot', 'audit', '--host', 'host0', ...db]);
    assert.equal(down.status, 1);
    assert.match(down.stderr, /^hostfiles: agent [0-9a-f-]{36}: unreachable: /m);
  });
});

test('secureboot audit: bad usage exits 2, a missing database 1', async () => {
  const usage = await hostfiles(['secureboot', 'audit', 'extra']);
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /secureboot audit got an unexpected argument: extra/);
  const missing = await hostfiles(['secureboot', 'audit', '--db', '/nonexistent/hostfiles.db']);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /no database at \/nonexistent\/hostfiles.db/);
});

// `hostfiles secureboot audit`: which VMs' stored NVRAM still trusts only the Microsoft 2011 CAs, whose end dates fall in
// 2026.
import type { AuditState, FleetAudit, VmAudit } from '../secureboot/index.js';
import type { Command } from './command.js';
import { loadNames } from './lookup.js';
import { plural, table } from './output.js';

export const SECUREBOOT_COMMANDS: readonly Command[] = [
  {
    words: ['secureboot', 'audit'],
    args: [],
    flags: [
      {
        name: 'host',
        value: 'HOST',
        help: 'audit the NVRAM files on HOST as they are now, read through its agent (reads the controller key)',
      },
    ],
    summary: "audit every VM's stored NVRAM: secure boot on or off, the KEK and db certificates, the 2023 CAs missing",
    details: [
      "Reads the newest NVRAM `sync` stored for each VM (no agent is asked; sync first for today's state), or with",
      '--host the NVRAM files recorded on that host as they are now, through its agent (nothing is stored), with',
      "hostfiles' own parser of OVMF/AAVMF variable stores, and lists per VM whether secure boot is on (a PK is",
      'enrolled and SecureBootEnable, if present, is 1), the certificates of KEK and db with subject and expiry (PK',
      'too with --json), and a state:',
      '  ok                every Microsoft 2011 CA enrolled has its 2023 successor (Microsoft Corporation KEK 2K',
      '                    CA 2023 in KEK; Windows UEFI CA 2023, Microsoft UEFI CA 2023 in db)',
      '  update_available  a Microsoft 2011 CA (KEK CA 2011 and UEFI CA 2011 end in June 2026, Windows Production',
      '                    PCA 2011 in October 2026) lacks its 2023 successor: the missing ones are named, each',
      '                    with its 2011 CA and whether that expired (on its date) or expires, by this clock',
      '  not_applicable    secure boot off, no Microsoft CA enrolled, a blank store, legacy boot, or no stored NVRAM',
      '  unreadable        the stored NVRAM is truncated or corrupt: the reason says where',
      'CAs are recognised by their subject (CN, and O=Microsoft Corporation) in the variable they belong to.',
      'Ends with the counts for the fleet (or the host). Exit 0 whatever the states; 1 when the database cannot be read',
      'or the host does not answer.',
    ].join('\n'),
    async run(ctx, input) {
      const host = input.string('host');
      const { auditLiveNvram, auditStoredNvram, AUDIT_STATES } = await import('../secureboot/index.js');
      const store = await ctx.store();
      const audit =
        host === undefined ? await auditStoredNvram(store, ctx.now) : await auditLiveNvram(await ctx.flows(), host);
      const names = await loadNames(store);
      const vms = audit.vms.map((vm) => ({ ...vm, hostName: vm.hostUuid === null ? null : names.host(vm.hostUuid) }));
      const source = host === undefined ? 'stored' : 'live';
      ctx.print({ source, vms, counts: audit.counts, total: audit.vms.length }, () => formatAudit(audit, AUDIT_STATES));
    },
  },
];

function formatAudit(audit: FleetAudit, states: readonly AuditState[]): string {
  if (audit.vms.length === 0) return 'no VMs';
  const summary = table(
    ['VM', 'SECURE BOOT', 'STATE', 'WHY'],
    audit.vms.map((vm) => [vm.vmName, secureBootCell(vm), vm.state, vm.reason]),
  );
  const certificates = audit.vms.flatMap((vm) =>
    vm.certificates
      .filter((c) => c.variable !== 'PK')
      .map((c) => [vm.vmName, c.variable, c.subject, endCell(c.notAfter, audit.at)]),
  );
  const counts = states.map((state) => `${audit.counts[state]} ${state}`).join(', ');
  return [
    summary,
    ...(certificates.length === 0 ? [] : ['', table(['VM', 'IN', 'CERTIFICATE', 'EXPIRES'], certificates)]),
    '',
    `${plural(audit.vms.length, 'VM')}: ${counts}`,
  ].join('\n');
}

/** A certificate's end date, said expired once it is past by the audit's clock. */
const endCell = (notAfter: string, at: number): string =>
  Date.parse(notAfter) < at ? `${notAfter.slice(0, 10)} (expired)` : notAfter.slice(0, 10);

const secureBootCell = (vm: VmAudit): string => (vm.secureBoot === null ? '-' : vm.secureBoot ? 'on' : 'off');

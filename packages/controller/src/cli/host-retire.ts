// `hostfiles host drain|remove`: a host gone for good, and every row that still names it settled in the open.
import type { HostHoldings, HostRemoval } from '../flows/index.js';
import { firstArg, type Command } from './command.js';
import { findHost } from './lookup.js';
import { formatTime, plural } from './output.js';

export const HOST_RETIRE_COMMANDS: readonly Command[] = [
  {
    words: ['host', 'drain'],
    args: [{ name: 'HOST', arity: 'one' }],
    flags: [],
    summary: 'list everything that still names a host (VMs, records, pending deletions); changes nothing',
    details: [
      'Reads the database only (the host is not asked). Lists the VMs living on the host, the states recorded on it',
      '(and whether the controller holds a backup of each), its pending deletions with their last error, and the',
      'paths hostfiles took charge of there, then which options `host remove` needs to settle them.',
      'To keep a VM, move it first: `hostfiles vm move VM --host OTHER`, then `hostfiles restore VM` writes its',
      'backups there.',
    ].join('\n'),
    async run(ctx, input) {
      const { hostHoldings } = await import('../flows/index.js');
      const store = await ctx.store();
      const holdings = await hostHoldings(store, await findHost(store, firstArg(input)));
      ctx.print(holdings, () => formatHoldings(holdings, 'would'));
    },
  },
  {
    words: ['host', 'remove'],
    args: [{ name: 'HOST', arity: 'one' }],
    flags: [
      {
        name: 'forget-records',
        help: 'the VMs living on the host become placed nowhere, and the states recorded on it are forgotten',
      },
      {
        name: 'forget-pending',
        help: 'its pending deletions are dropped: you state the files went with the host (never tried again)',
      },
    ],
    summary: 'remove a host; what still names it is refused unless settled by --forget-records / --forget-pending',
    details: [
      'A host no VM, record or pending deletion names is removed as it is. Otherwise the removal is refused (exit 1,',
      'host_in_use, nothing changed) unless the options that settle them are given (see `hostfiles host drain HOST`):',
      '  --forget-records  VMs whose current host it is become placed nowhere (`vm move` places them again), and the',
      "                    records of the states on it are dropped (a VM's backup, if any, is kept: `restore` it)",
      "  --forget-pending  the deletions pending on it are dropped; a removed TPM's key binding that waited only on",
      '                    them is detached',
      'The host is not asked: it is gone. Everything settled is printed, and journaled as one host.remove operation',
      '(`hostfiles ops show ID`) in the same transaction as the changes.',
    ].join('\n'),
    async run(ctx, input) {
      const { removeHost } = await import('../flows/index.js');
      const deps = await ctx.flows();
      const report = await removeHost(deps, firstArg(input), {
        forgetRecords: input.bool('forget-records'),
        forgetPending: input.bool('forget-pending'),
      });
      ctx.print(report, () => formatRemoval(report));
    },
  },
];

function formatHoldings(h: HostHoldings, mood: 'would' | 'did'): string {
  const lines = [
    `host ${h.hostName} (${h.hostUuid}): ${h.state}, last seen ${formatTime(h.lastSeenAt)}`,
    `${plural(h.vms.length, 'VM')} living on it${mood === 'did' ? ', now placed nowhere' : ''}:`,
    ...h.vms.map((vm) => `  ${vm.vmName} (${vm.vmUuid})`),
    `${plural(h.files.length, 'state')} recorded on it${mood === 'did' ? ', records forgotten' : ''}:`,
    ...h.files.map(
      (f) =>
        `  ${f.vmName}  ${f.type.padEnd(8)} ${f.path}  ${f.size} bytes  ${f.backup ? 'backup kept' : 'NO BACKUP: lost with the host'}`,
    ),
    `${plural(h.pending.length, 'deletion')} pending on it${mood === 'did' ? ', dropped' : ''}:`,
    ...h.pending.map(
      (p) =>
        `  #${p.id}  ${p.type.padEnd(8)} ${p.path}  ${plural(p.attempts, 'attempt')}${p.lastError === null ? '' : `: ${p.lastError}`}`,
    ),
    `${plural(h.ownedPaths.length, 'path')} in hostfiles' charge there${mood === 'did' ? ', forgotten' : ''}`,
  ];
  if (mood === 'would') {
    lines.push(
      h.needs.length === 0
        ? `\`hostfiles host remove ${h.hostName}\` removes it as it is`
        : `\`hostfiles host remove ${h.hostName} ${h.needs.map((n) => `--${n}`).join(' ')}\` settles these and removes it`,
    );
  }
  return lines.join('\n');
}

function formatRemoval(report: HostRemoval): string {
  return [
    `removed host ${report.hostName} (${report.hostUuid}); operation ${report.operationId}`,
    formatHoldings(report, 'did'),
    ...report.bindings.map((b) => `key binding of removed TPM ${b.tpmUuid}: ${b.binding}`),
  ].join('\n');
}

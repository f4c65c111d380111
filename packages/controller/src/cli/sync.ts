// `hostfiles sync`, `hostfiles restore` and `hostfiles reconcile`: backups in, backups out, and disk against database.
import type { FileType } from '@hostfiles/shared';
import {
  ORPHAN_VM_UUID,
  reconcileHost,
  restoreVm,
  syncVm,
  type ReconcileReport,
  type RestoreReport,
  type SyncReport,
} from '../flows/index.js';
import { firstArg, type Command } from './command.js';
import { CliError } from './errors.js';
import { loadNames, type Names } from './lookup.js';
import { formatTime, plural, table } from './output.js';

const PATH_FLAGS: readonly { readonly flag: string; readonly type: FileType }[] = [
  { flag: 'tpm-path', type: 'TpmState' },
  { flag: 'nvram-path', type: 'NvRam' },
];

export const SYNC_COMMANDS: readonly Command[] = [
  {
    words: ['sync'],
    args: [{ name: 'VM', arity: 'one' }],
    flags: [],
    summary: "read a VM's files back from their hosts into the controller's backups",
    details: [
      'One read command per host the VM has files on; every file row gets its sha256, size and sync time.',
      "A type's backup is taken from the VM's file on its current host, else from its most recently written one.",
      'A file missing or unreadable is reported, not backed up; if it was the source of a backup, the earlier',
      'backup is kept and the exit code is 1.',
    ].join('\n'),
    async run(ctx, input) {
      const deps = await ctx.flows();
      const report = await syncVm(deps, firstArg(input));
      ctx.print(report, () => formatSync(report));
      if (report.notUpdated.length > 0) {
        const types = report.notUpdated.map((f) => f.type).join(', ');
        throw new CliError(`VM ${report.vmName}: the ${types} backup was not updated (see the report)`);
      }
    },
  },
  {
    words: ['restore'],
    args: [{ name: 'VM', arity: 'one' }],
    flags: [
      { name: 'host', value: 'HOST', help: "the host to write on (default: the VM's current host)" },
      { name: 'tpm-path', value: 'ABS', help: 'where the TpmState backup goes on that host' },
      { name: 'nvram-path', value: 'ABS', help: 'where the NvRam backup goes on that host' },
    ],
    summary: "write a VM's backups onto a host (e.g. after it moved) and record them",
    details: [
      'Every backup of the VM (one per type) goes in one command. Without a --…-path, a type goes to the path',
      "of the VM's file of that type on that host, else to the path of its most recently written one on any",
      "host (hosts share their roots' layout); with neither, give the path. A path another file holds, or",
      "other than the VM's recorded file of that type on that host, is refused. A pending deletion at a path",
      'written is cancelled. A file not written is reported and the exit code is 1.',
    ].join('\n'),
    async run(ctx, input) {
      const host = input.string('host');
      const paths: Partial<Record<FileType, string>> = {};
      for (const { flag, type } of PATH_FLAGS) {
        const path = input.string(flag);
        if (path !== undefined) paths[type] = path;
      }
      const deps = await ctx.flows();
      const report = await restoreVm(deps, firstArg(input), { paths, ...(host === undefined ? {} : { host }) });
      ctx.print(report, () => formatRestore(report));
      const failed = report.files.filter((f) => f.status === 'failed').length;
      if (failed > 0) throw new CliError(`VM ${report.vmName}: ${plural(failed, 'file')} not restored`);
    },
  },
  {
    words: ['reconcile'],
    args: [{ name: 'HOST', arity: 'one' }],
    flags: [{ name: 'apply', help: 'put every orphan in the outbox: the retry deletes it like any pending deletion' }],
    summary: "list a host's roots and compare with the database: orphan files on disk, recorded files missing",
    details: [
      'An orphan is a file under a root that no file row and no pending deletion accounts for; a missing file',
      'is a row whose file is not on disk. Finding either is not a failure: exit 0. With --apply, the orphans',
      `become pending deletions (VM ${ORPHAN_VM_UUID}, no TPM), deleted by \`hostfiles retry\` or \`serve\`.`,
    ].join('\n'),
    async run(ctx, input) {
      const deps = await ctx.flows();
      const report = await reconcileHost(deps, firstArg(input), { apply: input.bool('apply') });
      const names = await loadNames(deps.store);
      ctx.print({ ...report, missing: report.missing.map((m) => ({ ...m, vmName: names.vm(m.vmUuid) })) }, () =>
        formatReconcile(report, names),
      );
    },
  },
];

function formatSync(report: SyncReport): string {
  const files =
    report.files.length === 0
      ? `VM ${report.vmName} has no recorded file`
      : table(
          ['HOST', 'OUTCOME', 'TYPE', 'PATH', 'SIZE', 'SHA256 / WHY'],
          report.files.map((f) =>
            f.status === 'read'
              ? [f.hostName, 'read', f.type, f.path, String(f.size), f.sha256.slice(0, 16)]
              : [f.hostName, f.status, f.type, f.path, '', f.reason],
          ),
        );
  const backups = report.backups.map((b) => `backup ${b.type}: ${b.size} bytes from ${b.hostName} ${b.path}`);
  const kept = report.notUpdated.map((f) => `backup ${f.type}: not updated (${f.hostName} ${f.path}: ${f.status})`);
  const summary = `sync of VM ${report.vmName}: ${plural(report.files.length, 'file')}, ${plural(report.commands, 'command')} sent`;
  return [files, '', ...backups, ...kept, summary].join('\n');
}

function formatRestore(report: RestoreReport): string {
  const files = table(
    ['OUTCOME', 'TYPE', 'PATH', 'SIZE', 'SHA256 / WHY'],
    report.files.map((f) =>
      f.status === 'written'
        ? ['written', f.type, f.path, String(f.size), f.sha256.slice(0, 16)]
        : ['failed', f.type, f.path, String(f.size), f.reason],
    ),
  );
  const written = report.files.filter((f) => f.status === 'written').length;
  return [
    files,
    '',
    `restore of VM ${report.vmName} on ${report.hostName}: ${written}/${report.files.length} written`,
  ].join('\n');
}

function formatReconcile(report: ReconcileReport, names: Names): string {
  const orphans =
    report.orphans.length === 0
      ? 'no orphans'
      : table(
          ['ORPHAN', 'TYPE', 'SIZE', 'SHA256', 'MODIFIED'],
          report.orphans.map((o) => [o.path, o.type, String(o.size), o.sha256.slice(0, 16), formatTime(o.mtime)]),
        );
  const missing =
    report.missing.length === 0
      ? 'no missing files'
      : table(
          ['MISSING', 'TYPE', 'VM', 'SIZE', 'SHA256 (RECORDED)'],
          report.missing.map((m) => [m.path, m.type, names.vm(m.vmUuid), String(m.size), m.sha256.slice(0, 16)]),
        );
  const summary =
    `reconcile of ${report.hostName}: ${plural(report.listed, 'file')} on disk, ${plural(report.orphans.length, 'orphan')}, ` +
    `${report.missing.length} missing, ${report.pending} already pending deletion`;
  const next =
    report.scheduled.length > 0
      ? [`${plural(report.scheduled.length, 'orphan')} scheduled for deletion: \`hostfiles retry\` deletes them now`]
      : report.orphans.length > 0
        ? ['`hostfiles reconcile HOST --apply` schedules the orphans for deletion']
        : [];
  return [orphans, '', missing, '', summary, ...next].join('\n');
}

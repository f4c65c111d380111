// `hostfiles sync`, `hostfiles restore` and `hostfiles reconcile`: backups in, backups out, and disk against database.
import type { FileType } from '@hostfiles/shared';
import { LISTING_BOUNDS } from '@hostfiles/shared/core';
import type {
  AdoptReport,
  FleetSyncReport,
  ReconcilePlan,
  ReconcileReport,
  RestoreReport,
  SyncReport,
} from '../flows/index.js';
import { ABS_PATH } from './args.js';
import { firstArg, type Command, type CommandInput } from './command.js';
import { CliError, UsageError } from './errors.js';
import { loadNames, type Names } from './lookup.js';
import { parseType, refuseKeepFlag, removedKeepFlag } from './state.js';
import { formatTime, plural, table } from './output.js';

const PATH_FLAGS: readonly { readonly flag: string; readonly type: FileType }[] = [
  { flag: 'tpm-path', type: 'TpmState' },
  { flag: 'nvram-path', type: 'NvRam' },
];

/** The paths given per type with --tpm-path and --nvram-path. */
function pathFlags(input: CommandInput): Partial<Record<FileType, string>> {
  const paths: Partial<Record<FileType, string>> = {};
  for (const { flag, type } of PATH_FLAGS) {
    const path = input.string(flag);
    if (path !== undefined) paths[type] = path;
  }
  return paths;
}

const RESTORE_HINT = 'see `hostfiles restore --help`';

/** --generation G: a whole number from 1. */
function parseGeneration(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const number = /^[1-9]\d{0,14}$/.test(value) ? Number(value) : NaN;
  if (Number.isNaN(number)) throw new UsageError(`--generation is a whole number from 1, not ${value}`, RESTORE_HINT);
  return number;
}

export const SYNC_COMMANDS: readonly Command[] = [
  {
    words: ['sync'],
    args: [{ name: 'VM', arity: 'optional' }],
    flags: [
      { name: 'all', help: "every host: list each one's states, read back only those that changed" },
      { name: 'host', value: 'HOST', help: 'as --all, on this host only' },
      removedKeepFlag('keep'),
    ],
    summary: "read a VM's files (or the fleet's changed ones) back from their hosts into the controller's backups",
    details: [
      'sync VM: one read command per host the VM has files on; every file row gets its sha256, size and sync time.',
      "A type's new generation is taken only from the VM's file on its current host: a type it has files of only on",
      'other hosts (it moved) is reported fenced, never captured from them (exit 1).',
      'A file missing or unreadable is reported, not backed up; if it was the source of a backup, the earlier',
      'backup is kept and the exit code is 1. A backup that differs from the newest generation of its type is a new',
      'generation (see `state history`); the oldest beyond the last N (`hostfiles state keep`) are dropped, never the',
      'newest.',
      'sync --all (or --host HOST): each host lists its states with their digests (one command a host), and only',
      "the recorded states whose digest differs from their row's, or that are their VM's own (on its current host)",
      'and differ from its newest generation, are read (in chunks of whole VMs) and recorded as `sync VM` records',
      'them, fencing included: the bytes read grow with what changed, not with the fleet. Recorded states the',
      'listing does not show are reported as missing (`hostfiles reconcile HOST` says more); after a listing cut',
      'short at the agent\'s bound ("truncated": true) they are looked at one by one first. Exit 1 when a host',
      'could not be listed or a read failed.',
    ].join('\n'),
    async run(ctx, input) {
      refuseKeepFlag(input.string('keep'), 'keep');
      const host = input.string('host');
      const fleet = input.bool('all') || host !== undefined;
      if (input.bool('all') && host !== undefined) {
        throw new UsageError('--all and --host go alone: --host HOST syncs that host', 'see `hostfiles sync --help`');
      }
      if (fleet === input.args.length > 0) {
        const what = fleet ? 'a VM, or --all, or --host HOST, not both' : 'a VM, or --all, or --host HOST';
        throw new UsageError(`sync needs ${what}`, 'see `hostfiles sync --help`');
      }
      if (fleet) {
        const { syncFleet } = await import('../flows/index.js');
        const report = await syncFleet(await ctx.flows(), host === undefined ? {} : { hosts: [host] });
        ctx.print(report, () => formatFleetSync(report));
        const failedHosts = report.hosts.filter((h) => h.error !== undefined).length;
        const failedReads = report.read.filter((f) => f.status === 'failed').length;
        if (failedHosts + failedReads + report.fenced.length > 0) {
          throw new CliError(
            `sync: ${plural(failedHosts, 'host')} not listed, ${plural(failedReads, 'state')} not read, ` +
              `${report.fenced.length} fenced (see the report)`,
          );
        }
        return;
      }
      const { syncVm } = await import('../flows/index.js');
      const deps = await ctx.flows();
      const report = await syncVm(deps, firstArg(input));
      ctx.print(report, () => formatSync(report));
      if (report.notUpdated.length > 0) {
        const types = report.notUpdated.map((f) => f.type).join(', ');
        throw new CliError(`VM ${report.vmName}: the ${types} backup was not updated (see the report)`);
      }
      if (report.fenced.length > 0) {
        const what = report.fenced.map((f) => `${f.type} on ${f.hostName}`).join(', ');
        throw new CliError(`VM ${report.vmName}: fenced, not captured: ${what} (see the report)`);
      }
    },
  },
  {
    words: ['restore'],
    args: [{ name: 'VM', arity: 'one' }],
    flags: [
      { name: 'host', value: 'HOST', help: "the host to write on (default: the VM's current host)" },
      { name: 'tpm-path', value: ABS_PATH, help: 'where the TpmState backup goes on that host' },
      { name: 'nvram-path', value: ABS_PATH, help: 'where the NvRam backup goes on that host' },
      { name: 'generation', value: 'G', help: 'this generation (see `state history`) instead of the newest' },
      {
        name: 'type',
        value: 'TYPE',
        help: "only this type's backup (TpmState or NvRam), the other left as it is; with --generation: its type, when the VM has both",
      },
      {
        name: 'force',
        help: 'write over state hostfiles does not know at a path the VM does not hold there yet, or over its own state there that changed since it was recorded; with --generation, restore one older than the newest',
      },
    ],
    summary: "write a VM's backups onto a host (e.g. after it moved) and record them",
    details: [
      'Every backup of the VM (one per type, a whole state each) goes in one command. Without a --…-path, a type',
      "goes to the VM's recorded state of that type on that host, else to libvirt's layout below the host's roots",
      '(<TpmState root>/<vm uuid>, <NvRam root>/<name>_VARS.fd), else to its most recently synced path on any host;',
      "with none, give the path. A path another VM's state holds, or other than the VM's recorded state of that",
      'type on that host, is refused. A pending deletion at a path written is cancelled.',
      "With --type TYPE, only that type's newest backup is written: the VM's state of the other type is not touched.",
      'With --generation G, only that generation of one type is written; one older than the newest needs --force.',
      "The VM's own states on that host are asked first: one in use by a running swtpm or QEMU refuses the restore",
      'whole, force or not; one that changed since it was recorded (never synced) is in no backup, and is written',
      'over only with --force (`hostfiles sync VM` captures it first).',
    ].join('\n'),
    async run(ctx, input) {
      const host = input.string('host');
      const paths = pathFlags(input);
      const type = parseType(input.string('type'), RESTORE_HINT);
      const generation = parseGeneration(input.string('generation'));
      const { restoreVm } = await import('../flows/index.js');
      const deps = await ctx.flows();
      const report = await restoreVm(deps, firstArg(input), {
        paths,
        force: input.bool('force'),
        ...(host === undefined ? {} : { host }),
        ...(type === undefined ? {} : { type }),
        ...(generation === undefined ? {} : { generation }),
      });
      ctx.print(report, () => formatRestore(report));
      const failed = report.files.filter((f) => f.status !== 'written').length;
      if (failed > 0) throw new CliError(`VM ${report.vmName}: ${plural(failed, 'state')} not restored`);
    },
  },
  {
    words: ['reconcile'],
    args: [{ name: 'HOST', arity: 'one' }],
    flags: [
      {
        name: 'apply',
        help: "put hostfiles' own orphans in the outbox: the retry deletes them like any pending deletion",
      },
      { name: 'include-unknown', help: 'with --apply: unknown state too (never state in use)' },
      {
        name: 'dry-run',
        help: 'with --apply: print what would be scheduled (`scheduled`), schedule and journal nothing',
      },
    ],
    summary: "list a host's states and compare with the database: orphans, unknown state, missing and modified states",
    details: [
      'A state is each file or directory directly below a root (a vTPM: <root>/<uuid>/). One that no row and no',
      'pending deletion accounts for is an orphan if hostfiles wrote it or took charge of it, and unknown',
      'otherwise (libvirt made it: `hostfiles adopt` registers it). State in use by a running swtpm or QEMU is',
      'listed as busy and never touched, and lock files are never listed. Missing: a recorded state not on disk;',
      'modified: on disk with another digest than recorded (the VM ran since its last sync). Finding any is not a',
      'failure: exit 0. With --apply, the orphans (and with --include-unknown the unknown state) become pending',
      `deletions, conditional on the digest seen: state that changes before the retry is left alone.`,
      'With --apply --dry-run: the same report (with "dryRun": true), `scheduled` naming what --apply would schedule;',
      'nothing is scheduled or journaled and no deletion is sent (the host is listed, as without --apply).',
      'An agent\'s listing is cut short ("truncated": true) past its bounds:',
      `${LISTING_BOUNDS}.`,
      'Recorded states it left out are looked at one by one (missing and modified stay whole); orphans, unknown',
      'and in-use states past it are not shown.',
    ].join('\n'),
    async run(ctx, input) {
      if (input.bool('include-unknown') && !input.bool('apply'))
        throw new UsageError('--include-unknown goes with --apply', 'see `hostfiles reconcile --help`');
      if (input.bool('dry-run') && !input.bool('apply'))
        throw new UsageError('--dry-run goes with --apply', 'see `hostfiles reconcile --help`');
      const { planReconcileHost, reconcileHost } = await import('../flows/index.js');
      const deps = await ctx.flows();
      const options = { includeUnknown: input.bool('include-unknown') };
      const report = input.bool('dry-run')
        ? await planReconcileHost(deps, firstArg(input), options)
        : await reconcileHost(deps, firstArg(input), {
            apply: input.bool('apply'),
            includeUnknown: input.bool('include-unknown'),
          });
      const names = await loadNames(deps.store);
      ctx.print({ ...report, missing: report.missing.map((m) => ({ ...m, vmName: names.vm(m.vmUuid) })) }, () =>
        formatReconcile(report, names),
      );
    },
  },
  {
    words: ['adopt'],
    args: [{ name: 'VM', arity: 'one' }],
    flags: [
      { name: 'host', value: 'HOST', help: "the host the state is on (default: the VM's current host)" },
      { name: 'tpm-path', value: ABS_PATH, help: "the VM's TPM state directory (default: <TpmState root>/<vm uuid>)" },
      {
        name: 'nvram-path',
        value: ABS_PATH,
        help: "the VM's NVRAM file (default, UEFI only: <NvRam root>/<name>_VARS.fd)",
      },
      { name: 'backup', help: 'sync the VM right after, so its backups hold what was adopted' },
    ],
    summary: 'register state that is already on a host (libvirt made it) without copying it',
    details: [
      "The agent says what is at the paths (libvirt's layout below its roots unless given); each state found is",
      'recorded with its digest. Nothing on the host changes; a running VM can be adopted. A path that is',
      "another VM's state, or a VM's state of that type recorded elsewhere on the host, is refused. Exit 1 when",
      'nothing is found.',
    ].join('\n'),
    async run(ctx, input) {
      const host = input.string('host');
      const paths = pathFlags(input);
      const { adoptVm } = await import('../flows/index.js');
      const deps = await ctx.flows();
      const report = await adoptVm(deps, firstArg(input), {
        paths,
        backup: input.bool('backup'),
        ...(host === undefined ? {} : { host }),
      });
      ctx.print(report, () => formatAdopt(report));
      if (report.backup !== null && report.backup.notUpdated.length > 0) {
        throw new CliError(`VM ${report.vmName}: adopted, but the backup was not updated (see the report)`);
      }
      if (report.backup !== null && report.backup.fenced.length > 0) {
        throw new CliError(`VM ${report.vmName}: adopted, but not captured: fenced (see the report)`);
      }
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
  const backups = report.backups.map(
    (b) =>
      `backup ${b.type}: ${b.size} bytes from ${b.hostName} ${b.path}, generation ${b.generation}${b.created ? '' : ' (unchanged)'}`,
  );
  const kept = report.notUpdated.map((f) => `backup ${f.type}: not updated (${f.hostName} ${f.path}: ${f.status})`);
  const fenced = report.fenced.map((f) => `backup ${f.type}: fenced (${f.hostName} ${f.path}: ${f.reason})`);
  const summary = `sync of VM ${report.vmName}: ${plural(report.files.length, 'file')}, ${plural(report.commands, 'command')} sent`;
  return [files, '', ...backups, ...kept, ...fenced, summary].join('\n');
}

function formatFleetSync(report: FleetSyncReport): string {
  const hosts = table(
    ['HOST', 'LISTED', 'RECORDED', 'UNCHANGED', 'READ', 'BYTES READ', 'ERROR'],
    report.hosts.map((h) => {
      const read = report.read.filter((f) => f.hostUuid === h.hostUuid).length;
      return [
        h.hostName,
        String(h.listed),
        String(h.recorded),
        String(h.unchanged),
        String(read),
        String(h.bytesRead),
        h.error ?? '',
      ];
    }),
  );
  const read =
    report.read.length === 0
      ? 'nothing changed: no state read'
      : table(
          ['HOST', 'OUTCOME', 'WHY', 'TYPE', 'PATH', 'SIZE', 'SHA256 / WHY'],
          report.read.map((f) =>
            f.status === 'read'
              ? [f.hostName, 'read', f.why, f.type, f.path, String(f.size), f.sha256.slice(0, 16)]
              : [f.hostName, f.status, f.why, f.type, f.path, '', f.reason],
          ),
        );
  const missing = report.missing.map(
    (m) => `missing on ${m.hostName}: ${m.type} ${m.path} (hostfiles reconcile ${m.hostName})`,
  );
  const fenced = report.fenced.map((f) => `fenced on ${f.hostName}: ${f.type} ${f.path}: ${f.reason}`);
  const truncated = report.hosts
    .filter((h) => h.truncated === true)
    .map((h) => `listing of ${h.hostName} truncated (${LISTING_BOUNDS}): its recorded states were stat'ed instead`);
  const t = report.totals;
  const summary =
    `fleet sync: ${plural(report.hosts.length, 'host')}, ${plural(t.recorded, 'recorded state')}, ${t.unchanged} unchanged, ` +
    `${t.read} read (${t.bytesRead} bytes), ${plural(report.backups, 'generation')} made, ${plural(t.commands, 'command')} sent; ` +
    `operation ${report.operationId}`;
  return [hosts, '', read, ...missing, ...fenced, ...truncated, '', summary].join('\n');
}

function formatRestore(report: RestoreReport): string {
  const files = table(
    ['OUTCOME', 'TYPE', 'PATH', 'SIZE', 'SHA256 / WHY'],
    report.files.map((f) =>
      f.status === 'written'
        ? ['written', f.type, f.path, String(f.size), f.sha256.slice(0, 16)]
        : [f.status, f.type, f.path, String(f.size), f.reason],
    ),
  );
  const written = report.files.filter((f) => f.status === 'written').length;
  return [
    files,
    '',
    `restore of VM ${report.vmName} on ${report.hostName}: ${written}/${report.files.length} written`,
  ].join('\n');
}

function formatAdopt(report: AdoptReport): string {
  const rows = report.states.map((s) =>
    s.status === 'adopted'
      ? ['adopted', s.type, s.kind, s.path, String(s.size), s.sha256.slice(0, 16), s.busy ? 'in use' : '']
      : ['absent', s.type, '', s.path, '', '', ''],
  );
  const lines = [
    table(['OUTCOME', 'TYPE', 'KIND', 'PATH', 'SIZE', 'SHA256', ''], rows),
    '',
    `adopted ${report.states.filter((s) => s.status === 'adopted').length} state(s) of VM ${report.vmName} on ` +
      `${report.hostName}; operation ${report.operationId}`,
  ];
  if (report.backup !== null) lines.push(formatSync(report.backup));
  return lines.join('\n');
}

function formatReconcile(report: ReconcileReport | ReconcilePlan, names: Names): string {
  const states = (title: string, list: ReconcileReport['orphans'], none: string): string =>
    list.length === 0
      ? none
      : table(
          [title, 'TYPE', 'KIND', 'SIZE', 'SHA256', 'MODIFIED'],
          list.map((o) => [o.path, o.type, o.kind, String(o.size), o.sha256.slice(0, 16), formatTime(o.mtime)]),
        );
  const recorded = (title: string, list: ReconcileReport['missing'], none: string): string =>
    list.length === 0
      ? none
      : table(
          [title, 'TYPE', 'VM', 'SIZE', 'SHA256 (RECORDED)'],
          list.map((m) => [m.path, m.type, names.vm(m.vmUuid), String(m.size), m.sha256.slice(0, 16)]),
        );
  const summary =
    `reconcile of ${report.hostName}: ${plural(report.listed, 'state')} on disk, ` +
    `${plural(report.orphans.length, 'orphan')}, ${report.unknown.length} unknown, ${report.busy.length} in use, ` +
    `${report.missing.length} missing, ${report.modified.length} modified, ${report.pending} already pending deletion`;
  const next =
    'dryRun' in report
      ? [
          `dry run: ${plural(report.scheduled.length, 'state')} would be scheduled for deletion` +
            (report.scheduled.length === 0 ? '' : `: ${report.scheduled.join(', ')}`) +
            '; nothing was changed',
        ]
      : report.scheduled.length > 0
        ? [`${plural(report.scheduled.length, 'state')} scheduled for deletion: \`hostfiles retry\` deletes them now`]
        : report.orphans.length > 0
          ? ['`hostfiles reconcile HOST --apply` schedules the orphans for deletion']
          : [];
  // Said of unknown state left where it is, not of what this run schedules (or would) with --include-unknown.
  const hint = report.unknown.some((u) => !report.scheduled.includes(u.path))
    ? ["unknown state is never deleted unless --apply --include-unknown; `hostfiles adopt VM` registers a VM's"]
    : [];
  return [
    states('ORPHAN', report.orphans, 'no orphans'),
    '',
    states('UNKNOWN', report.unknown, 'no unknown state'),
    '',
    states('IN USE', report.busy, 'nothing unrecorded in use'),
    '',
    ...(report.quarantined.length === 0
      ? []
      : [
          states(
            'QUARANTINED (the agent set these aside after a crash: look at them on the host)',
            report.quarantined,
            '',
          ),
          '',
        ]),
    recorded('MISSING', report.missing, 'no missing state'),
    '',
    recorded('MODIFIED', report.modified, 'no modified state'),
    '',
    summary,
    ...(report.truncated === true ? [TRUNCATED_RECONCILE] : []),
    ...next,
    ...hint,
  ].join('\n');
}

const TRUNCATED_RECONCILE =
  `the agent's listing stopped short (${LISTING_BOUNDS}): orphans, unknown and in-use states past it are not ` +
  "shown (look at the host's roots); missing and modified are whole";

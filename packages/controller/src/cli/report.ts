// The removal and retry reports as an operator reads them: per host and file, the outcome and why.
import type { HostReport, RemovalReport, RetryReport } from '../flows/index.js';
import { plural, table } from './output.js';

const FILE_HEADERS = ['HOST', 'OUTCOME', 'TYPE', 'PATH', 'WHY'];

function fileRows(hosts: readonly HostReport[]): string[][] {
  return hosts.flatMap((host) =>
    host.files.map((file) => [
      host.hostName,
      file.status === 'unconfirmed' ? 'pending' : file.status === 'changed' ? 'dropped' : file.status,
      file.type,
      file.path,
      'reason' in file ? file.reason : '',
    ]),
  );
}

/** Each file of a flow that deletes, per host: its outcome and why (a pending one's reason: busy, unreachable…). */
export function filesTable(hosts: readonly HostReport[]): string {
  const rows = fileRows(hosts);
  return rows.length === 0 ? 'no files on any host' : table(FILE_HEADERS, rows);
}

/** Hosts that left something pending, by name. */
const pendingHosts = (hosts: readonly HostReport[]): string[] =>
  hosts.filter((h) => h.files.some((f) => f.status === 'unconfirmed')).map((h) => h.hostName);

/** `dryRun`: the report of a removal planned, not made (every file 'planned', nothing sent). */
export function formatRemoval(report: RemovalReport, dryRun = false): string {
  // A dry run's outcomes are what would be: said in the headers, its values being the real run's words.
  const vms = table(
    dryRun ? ['VM', 'TPM', 'NVRAM WOULD BE', 'KEY BINDING WOULD BE'] : ['VM', 'TPM', 'NVRAM', 'KEY BINDING'],
    report.vms.map((vm) => [vm.vmName, vm.tpmUuid, vm.nvram, vm.binding]),
  );
  const files = filesTable(report.hosts);
  // Files the flow never sent (their host gone from the inventory) are pending without a host report.
  const listed = new Set(report.hosts.flatMap((h) => h.files.map((f) => `${f.hostUuid}\0${f.path}`)));
  const unsent = report.pending.filter((p) => !listed.has(`${p.hostUuid}\0${p.path}`));
  const extra = unsent.map((p) => `pending ${p.type} ${p.path} on host ${p.hostUuid}: ${p.reason}`);
  const total = report.hosts.reduce((sent, host) => sent + host.files.length, 0) + unsent.length;
  const gone = total - report.pending.length;
  const where = pendingHosts(report.hosts);
  if (dryRun) {
    return [
      vms,
      '',
      files,
      '',
      `dry run: ${plural(report.vms.length, 'TPM')} would be removed; ${plural(total, 'file')} would be deleted in ` +
        `${plural(report.commands, 'command')}; nothing was changed`,
    ].join('\n');
  }
  const summary =
    `summary: ${plural(report.vms.length, 'TPM')} removed; ${plural(total, 'file')}: ${gone} gone, ` +
    `${report.pending.length} pending${where.length === 0 ? '' : ` (on ${where.join(', ')})`}; ` +
    `${plural(report.commands, 'command')} sent`;
  const next =
    report.pending.length === 0
      ? []
      : ['pending deletions are kept and retried: `hostfiles retry` (one pass), or `hostfiles serve`'];
  return [vms, '', files, ...extra, '', summary, ...next].join('\n');
}

export function formatRetry(report: RetryReport): string {
  if (report.attempted === 0) return 'retry: nothing pending';
  const rows = fileRows(report.hosts);
  const summary =
    `retry: ${report.attempted} attempted, ${report.confirmed} gone, ${report.stillPending} still pending` +
    `${report.dropped > 0 ? `, ${report.dropped} dropped (other state there now)` : ''}; ` +
    `${plural(report.detached.length, 'key binding')} detached`;
  return [table(FILE_HEADERS, rows), '', summary].join('\n');
}

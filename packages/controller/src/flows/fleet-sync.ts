// Fleet sync: every host's states listed with their digests (one `files.list` a host), and only the states whose
// digest differs from what the controller holds read back (`files.read`, chunked), so the bytes read from hosts grow
// with what changed, not with the fleet. What is read is recorded as `hostfiles sync VM` records it.
import { randomUUID } from 'node:crypto';
import { FILE_TYPES, MAX_OPS, mapLimit, type FileType, type ListEntry, type StatResult } from '@hostfiles/shared';
import { isAgentCallError } from '../agents/index.js';
import type { BackupFile, Host, Vm, VmHostFile } from '../store/index.js';
import { bytesOf } from './bytes-of.js';
import { FlowError, type FlowDeps } from './deps.js';
import { groupBy } from './group-by.js';
import { markHost, markUnreachable } from './host-state.js';
import { planOnVms, runPlanned } from './run-planned.js';
import { statUnlisted } from './unlisted.js';
import {
  failJournalOnError,
  readOnHost,
  recordRead,
  repeatFlow,
  startJournal,
  type FencedCapture,
  type HostRead,
  type SyncedFile,
} from './sync.js';
import type { Operation } from '../store/index.js';
import { OPERATION_KIND } from '../store/types.js';

export const SYNC_FLEET = OPERATION_KIND.syncFleet;

/** The most bytes (as listed) one `files.read` of a fleet sync asks for: answers stay far below the client's cap. */
export const FLEET_READ_BYTES = 64 * 1024 * 1024;

/**
 * The most bytes a host's `files.list` or `files.stat` answer may hold in a fleet sync (~0.7 KiB a state on the wire:
 * ~90,000 states a host), and how many hosts are listed at once: what a fleet of broken or hostile agents can make
 * the controller hold is bounded by their product (512 MiB), not by the client's 256 MiB per answer × concurrency.
 */
export const FLEET_LIST_BYTES = 64 * 1024 * 1024;
export const FLEET_LIST_CONCURRENCY = 8;

/** Why a recorded state was read: its digest on disk differs from the row's, or its backup is not of it. */
export type ReadReason = 'changed' | 'backup_behind';

export interface FleetSyncHost {
  readonly hostUuid: string;
  readonly hostName: string;
  /** states the host listed */
  readonly listed: number;
  /** recorded states on the host */
  readonly recorded: number;
  /** recorded states whose digest and backup were already the controller's: not read */
  readonly unchanged: number;
  /** `files.list` and `files.read` commands sent */
  readonly commands: number;
  /** bytes of the states read, decoded */
  readonly bytesRead: number;
  /** set when the host could not be listed: none of its states was looked at */
  readonly error?: string;
  /**
   * The agent's listing stopped short (LISTING_BOUNDS: its names, bytes or time): the recorded states it did not
   * show were stat'ed instead, one `files.stat` per 1,000.
   */
  readonly truncated?: true;
}

/** A state a fleet sync read: what the read gave, its VM, and why it was read. */
export type FleetReadState = SyncedFile & { readonly vmUuid: string; readonly why: ReadReason };

/** A recorded state its host's listing did not show. */
export interface FleetMissingState {
  readonly vmUuid: string;
  readonly hostUuid: string;
  readonly hostName: string;
  readonly type: FileType;
  readonly path: string;
}

export interface FleetSyncReport {
  readonly operationId: string;
  readonly hosts: readonly FleetSyncHost[];
  /** every state read, with what the read gave */
  readonly read: readonly FleetReadState[];
  /** recorded states the listing did not show (not read: `hostfiles reconcile HOST` says more) */
  readonly missing: readonly FleetMissingState[];
  /** states read from their VM's host whose capture was refused: the VM moved, or its epoch rose, meanwhile */
  readonly fenced: readonly (FencedCapture & { readonly vmUuid: string })[];
  /** generations made (a capture identical to the newest generation makes none) */
  readonly backups: number;
  readonly totals: {
    readonly recorded: number;
    readonly unchanged: number;
    readonly read: number;
    readonly bytesRead: number;
    readonly commands: number;
    readonly failedHosts: number;
  };
}

/** What a host's listing says of its recorded states. */
interface HostPlan {
  readonly toRead: Map<string, ReadReason>;
  readonly missing: VmHostFile[];
  readonly unchanged: number;
}

/**
 * Syncs the fleet (or the hosts named): each host listed, then, per host, the VMs with a state to read held (their
 * keys, as `sync VM` holds them), those states read in chunks and recorded. A host that cannot be listed or read is
 * reported and skipped; its states and backups stay as they were.
 */
export async function syncFleet(
  deps: FlowDeps,
  options: { readonly hosts?: readonly string[] } = {},
  operationId: string = randomUUID(),
): Promise<FleetSyncReport> {
  const hosts = await selectHosts(deps, options.hosts);
  await startJournal(deps, {
    id: operationId,
    kind: SYNC_FLEET,
    subject: 'fleet',
    step: 'list',
    input: { hosts: hosts.map((h) => h.uuid) },
  });
  return failJournalOnError(deps, operationId, async () => {
    const vms = new Map((await deps.store.listVms()).map((vm) => [vm.uuid, vm]));
    let done = 0;
    const perHost = await mapLimit(hosts, Math.min(deps.concurrency, FLEET_LIST_CONCURRENCY), async (host) => {
      const result = await syncHost(deps, host, vms);
      deps.onProgress?.({ flow: SYNC_FLEET, done: ++done, total: hosts.length, host: host.name });
      return result;
    });
    const hostsReport = perHost.map((r) => r.host);
    const sum = (of: (h: FleetSyncHost) => number): number => hostsReport.reduce((n, h) => n + of(h), 0);
    const read = perHost.flatMap((r) => r.read);
    const report: FleetSyncReport = {
      operationId,
      hosts: hostsReport,
      read,
      missing: perHost.flatMap((r) => r.missing),
      fenced: perHost.flatMap((r) => r.fenced),
      backups: perHost.reduce((n, r) => n + r.backups, 0),
      totals: {
        recorded: sum((h) => h.recorded),
        unchanged: sum((h) => h.unchanged),
        read: read.length,
        bytesRead: sum((h) => h.bytesRead),
        commands: sum((h) => h.commands),
        failedHosts: hostsReport.filter((h) => h.error !== undefined).length,
      },
    };
    // The journal keeps the counts and what was read, not every host's line: a fleet's report can be long. Failed
    // when the CLI exits 1 for it: a host not listed, a state not read, a capture fenced.
    const failed =
      report.totals.failedHosts + read.filter((f) => f.status === 'failed').length + report.fenced.length > 0;
    await deps.store.finishOperation(operationId, failed ? 'failed' : 'done', {
      totals: report.totals,
      backups: report.backups,
      // A failed read's path and reason, and each fenced capture's (as many as reads): `ops show` says why.
      read: read.slice(0, MAX_OPS).map((f) => ({
        vm: f.vmUuid,
        host: f.hostUuid,
        type: f.type,
        status: f.status,
        ...(f.status === 'read' ? {} : { path: f.path, reason: f.reason }),
      })),
      fenced: report.fenced
        .slice(0, MAX_OPS)
        .map((f) => ({ vm: f.vmUuid, path: f.path, code: f.code, reason: f.reason })),
      failedHosts: hostsReport.filter((h) => h.error !== undefined).map((h) => ({ host: h.hostUuid, error: h.error })),
    });
    return report;
  });
}

async function selectHosts(deps: FlowDeps, names: readonly string[] | undefined): Promise<Host[]> {
  const all = await deps.store.listHosts();
  if (names === undefined || names.length === 0) return all;
  const byRef = new Map(all.flatMap((h) => [[h.name, h] as const, [h.uuid, h] as const]));
  const chosen = new Map<string, Host>();
  for (const name of names) {
    const host = byRef.get(name);
    if (host === undefined) throw new FlowError('not_found', `no host ${name}`);
    chosen.set(host.uuid, host); // a host named twice (by name and uuid, say) is synced once
  }
  return [...chosen.values()];
}

interface HostOutcome {
  readonly host: FleetSyncHost;
  readonly read: FleetSyncReport['read'];
  readonly missing: FleetSyncReport['missing'];
  readonly fenced: FleetSyncReport['fenced'];
  readonly backups: number;
}

async function syncHost(deps: FlowDeps, host: Host, vms: ReadonlyMap<string, Vm>): Promise<HostOutcome> {
  const base = { hostUuid: host.uuid, hostName: host.name };
  const recorded = await deps.store.listFilesByHost(host.uuid);
  const empty = { read: [], missing: [], fenced: [], backups: 0 };
  if (recorded.length === 0) {
    return { ...empty, host: { ...base, listed: 0, recorded: 0, unchanged: 0, commands: 0, bytesRead: 0 } };
  }
  let listing: readonly ListEntry[];
  let deep: ReadonlyMap<string, StatResult>;
  let truncated = false;
  let commands = 1;
  try {
    const capped = { maxAnswerBytes: FLEET_LIST_BYTES };
    // The agent hashes every state it lists: each attempt is given the time the recorded ones take (64 MiB AAVMF
    // stores make a host's listing take minutes), beyond the fixed timeout.
    const list = { ...capped, bytes: bytesOf(recorded) };
    const answer = await deps.agents.send(host, 'files.list', { types: [...FILE_TYPES] }, list);
    listing = answer.results;
    truncated = answer.truncated === true;
    deep = await statUnlisted(deps, host, recorded, answer, capped, () => commands++);
    await markHost(deps, host, 'Connected');
  } catch (error) {
    if (!isAgentCallError(error)) throw error;
    await markUnreachable(deps, host, error);
    const reason = `${error.failure}: ${error.message}`;
    const facts = { listed: 0, recorded: recorded.length, unchanged: 0, commands, bytesRead: 0, error: reason };
    return { ...empty, host: { ...base, ...facts } };
  }
  const vmUuids = [...new Set(recorded.map((row) => row.vmUuid))];
  const plan = planHost(recorded, listing, deep, await deps.store.listBackupsByVms(vmUuids), vms);
  const missing = plan.missing.map((row): FleetMissingState => ({
    hostUuid: host.uuid,
    vmUuid: row.vmUuid,
    hostName: host.name,
    type: row.type,
    path: row.path,
  }));
  let bytesRead = 0;
  let backupsUpdated = 0;
  const read: FleetReadState[] = [];
  const fenced: FleetSyncReport['fenced'][number][] = [];
  const byVm = groupBy(
    recorded.filter((row) => plan.toRead.has(row.uuid)),
    (row) => row.vmUuid,
  );
  // Chunks of whole VMs, each under MAX_OPS states and FLEET_READ_BYTES (a VM's states travel in one read).
  for (const chunk of chunksOfVms([...byVm.values()])) {
    const outcome = await readAndRecord(
      deps,
      host,
      chunk.map((rows) => rows[0]?.vmUuid ?? ''),
      plan.toRead,
    );
    commands += outcome.commands;
    bytesRead += outcome.bytes;
    backupsUpdated += outcome.backups;
    read.push(...outcome.read);
    fenced.push(...outcome.fenced);
  }
  const facts = {
    listed: listing.length,
    recorded: recorded.length,
    unchanged: plan.unchanged,
    commands,
    bytesRead,
    ...(truncated ? { truncated: true as const } : {}),
  };
  return { host: { ...base, ...facts }, read, missing, fenced, backups: backupsUpdated };
}

/**
 * A recorded state is read when the listing (or, for a path below a listed state, its stat) shows another digest
 * than its row's, or when it is its VM's own (on its current host) and the VM's newest generation of its type holds
 * another digest (or there is none). Unchanged otherwise; missing when the host has nothing there (a stat that
 * failed counts as missing: it is not read).
 */
function planHost(
  recorded: readonly VmHostFile[],
  listing: readonly ListEntry[],
  deep: ReadonlyMap<string, StatResult>,
  newest: readonly BackupFile[],
  vms: ReadonlyMap<string, Vm>,
): HostPlan {
  const listed = new Map(listing.map((entry) => [`${entry.type}\0${entry.path}`, entry]));
  const newestOf = new Map(newest.map((b) => [`${b.vmUuid}\0${b.type}`, b]));
  const toRead = new Map<string, ReadReason>();
  const missing: VmHostFile[] = [];
  let unchanged = 0;
  for (const row of recorded) {
    const stat = deep.get(row.path);
    const onDisk =
      listed.get(`${row.type}\0${row.path}`)?.sha256 ?? (stat?.status === 'present' ? stat.sha256 : undefined);
    if (onDisk === undefined) {
      missing.push(row);
      continue;
    }
    if (onDisk !== row.sha256) {
      toRead.set(row.uuid, 'changed');
      continue;
    }
    const own = vms.get(row.vmUuid)?.hostUuid === row.hostUuid;
    if (own && newestOf.get(`${row.vmUuid}\0${row.type}`)?.sha256 !== onDisk) toRead.set(row.uuid, 'backup_behind');
    else unchanged++;
  }
  return { toRead, missing, unchanged };
}

function* chunksOfVms(vms: readonly (readonly VmHostFile[])[]): Generator<(readonly VmHostFile[])[]> {
  let chunk: (readonly VmHostFile[])[] = [];
  let files = 0;
  let bytes = 0;
  for (const rows of vms) {
    const size = bytesOf(rows);
    if (chunk.length > 0 && (files + rows.length > MAX_OPS || bytes + size > FLEET_READ_BYTES)) {
      yield chunk;
      chunk = [];
      files = 0;
      bytes = 0;
    }
    chunk.push(rows);
    files += rows.length;
    bytes += size;
  }
  if (chunk.length > 0) yield chunk;
}

/**
 * Holds the chunk's VMs (their keys, as `sync VM` does), reads again what is to be read of them on this host (the
 * rows and the VMs as they are now, once held), and records what was read in one transaction: each row's digest, and
 * a generation where the row is its VM's own, fenced as `sync VM` fences (the VM's host and epoch read once held,
 * read again in the transaction).
 */
async function readAndRecord(
  deps: FlowDeps,
  host: Host,
  vmUuids: readonly string[],
  toRead: ReadonlyMap<string, ReadReason>,
): Promise<{
  commands: number;
  bytes: number;
  backups: number;
  read: FleetReadState[];
  fenced: FleetSyncReport['fenced'][number][];
}> {
  return runPlanned(
    deps,
    () => planOnVms(deps, vmUuids),
    async (rows) => {
      const mine = rows.filter((row) => row.hostUuid === host.uuid && toRead.has(row.uuid));
      if (mine.length === 0) return { commands: 0, bytes: 0, backups: 0, read: [], fenced: [] };
      const held = new Map<string, Vm>();
      for (const uuid of vmUuids) {
        const vm = await deps.store.getVm(uuid);
        if (vm !== null) held.set(uuid, vm);
      }
      const reads = await readOnHost(deps, host, mine);
      const { backups, fenced } = await record(deps, host, reads, held);
      const read = reads.map((r) => ({ ...r.outcome, vmUuid: r.row.vmUuid, why: toRead.get(r.row.uuid) ?? 'changed' }));
      const bytes = reads.reduce((n, r) => n + (r.state?.size ?? 0), 0);
      return { commands: 1, bytes, backups, read, fenced };
    },
  );
}

async function record(
  deps: FlowDeps,
  host: Host,
  reads: readonly HostRead[],
  held: ReadonlyMap<string, Vm>,
): Promise<{ backups: number; fenced: FleetSyncReport['fenced'][number][] }> {
  const now = deps.now();
  return deps.store.transaction(async (tx) => {
    let backups = 0;
    const fenced: FleetSyncReport['fenced'][number][] = [];
    for (const { row, outcome, state } of reads) {
      if (outcome.status !== 'read' || state === undefined) continue;
      const vm = held.get(row.vmUuid);
      // A state on a host the VM left is recorded on its own row, never captured (`sync VM` says so as fenced).
      const own = vm !== undefined && vm.hostUuid === row.hostUuid;
      const capture = own ? { vm, owner: await tx.getVm(vm.uuid), source: 'sync' as const } : null;
      const captured = await recordRead(tx, now, row, state, host.name, capture);
      if (captured === null) continue;
      if ('fenced' in captured) {
        const { hostUuid, hostName, type, path } = outcome;
        fenced.push({ vmUuid: row.vmUuid, hostUuid, hostName, type, path, code: 'fenced', reason: captured.fenced });
      } else if (captured.created) backups++;
    }
    return { backups, fenced };
  });
}

/** Repeats a fleet sync the controller was killed in: it only lists and reads hosts and overwrites rows and backups. */
export async function resumeFleetSync(deps: FlowDeps, operation: Operation): Promise<'done' | 'failed'> {
  return repeatFlow(deps, operation, async (input) => {
    const named = Array.isArray(input['hosts']) ? input['hosts'].filter((h) => typeof h === 'string') : [];
    const known = new Set((await deps.store.listHosts()).map((h) => h.uuid));
    const hosts = named.filter((h) => known.has(h));
    // An empty list would mean every host: a sync of hosts that are all gone since is over.
    if (hosts.length === 0) return 'none of its hosts is in the inventory any more';
    await syncFleet(deps, { hosts }, operation.id);
    return null;
  });
}

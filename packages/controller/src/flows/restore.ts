// Restore: a VM's backups written back onto a host (its current one by default, e.g. after it moved) and recorded,
// with writeFile's guarantee: a pending deletion at a (host, path) written is cancelled in the same transaction.
import { createHash, randomUUID } from 'node:crypto';
import { isValidRoot, writeOp, type ApplyResult, type FileType } from '@hostfiles/shared';
import { isAgentCallError } from '../agents/index.js';
import type { BackupFile, Host, Operation, StoreTx, Vm, VmHostFile } from '../store/index.js';
import { FlowError, type FlowDeps } from './deps.js';
import { resolveHost } from './inventory.js';
import { settleBinding } from './remove-tpm.js';
import { resolveVm } from './resolve.js';
import { failJournalOnError, repeatFlow, startJournal } from './sync.js';

export const RESTORE_VM = 'vm.restore';

export interface RestoreOptions {
  /** the host to write on; default: the VM's current host */
  readonly host?: string;
  /** where each type goes on that host; default: see `restoreVm` */
  readonly paths?: Readonly<Partial<Record<FileType, string>>>;
}

export type RestoreOutcome = { readonly status: 'written' } | { readonly status: 'failed'; readonly reason: string };

export type RestoredFile = {
  readonly type: FileType;
  readonly path: string;
  readonly sha256: string;
  readonly size: number;
} & RestoreOutcome;

export interface RestoreReport {
  readonly operationId: string;
  readonly vmUuid: string;
  readonly vmName: string;
  readonly hostUuid: string;
  readonly hostName: string;
  readonly commands: number;
  /** why the host could not be reached or refused the command, if it did */
  readonly error?: string;
  readonly files: readonly RestoredFile[];
}

interface Planned {
  readonly backup: BackupFile;
  readonly path: string;
}

/**
 * Writes every backup of the VM (one per type) onto the host in one command, then records each file written.
 * The path of a type is, in order: the one given; the VM's file of that type already recorded on that host; the
 * path of its most recently written file of that type on any other host (hosts share their roots' layout);
 * with none of those, the restore is refused before anything is sent. Refused too: a path another file holds, and
 * a path other than the one the VM's file of that type has on that host (the file there would be forgotten).
 */
export async function restoreVm(
  deps: FlowDeps,
  vmRef: string,
  options: RestoreOptions = {},
  operationId: string = randomUUID(),
): Promise<RestoreReport> {
  const resolved = await resolveVm(deps.store, vmRef);
  const hostRef = options.host ?? resolved.hostUuid;
  if (hostRef === null) throw new FlowError('bad_input', `VM ${resolved.name} is on no host: name one`);
  const host = await resolveHost(deps, hostRef);
  return deps.queue.run([resolved.uuid], async () => {
    const vm = await deps.store.getVm(resolved.uuid);
    if (vm === null) throw new FlowError('not_found', `no VM ${vmRef}`);
    const plan = await planRestore(deps, vm, host, options.paths ?? {});
    const input = { vm: vm.uuid, host: host.uuid, paths: Object.fromEntries(plan.map((p) => [p.backup.type, p.path])) };
    await startJournal(deps, { id: operationId, kind: RESTORE_VM, subject: vm.uuid, step: 'write', input });
    return failJournalOnError(deps, operationId, async () => {
      const { results, error } = await writeOnHost(deps, host, plan);
      return record(deps, operationId, vm, host, plan, results, error);
    });
  });
}

async function planRestore(
  deps: FlowDeps,
  vm: Vm,
  host: Host,
  given: Readonly<Partial<Record<FileType, string>>>,
): Promise<Planned[]> {
  const backups = await deps.store.listBackupsByVm(vm.uuid);
  if (backups.length === 0) throw new FlowError('not_found', `VM ${vm.name} has no backup: sync it first`);
  for (const type of Object.keys(given)) {
    if (!backups.some((b) => b.type === type))
      throw new FlowError('bad_input', `VM ${vm.name} has no ${type} backup to restore`);
  }
  const files = await deps.store.listFilesByVm(vm.uuid);
  const onHost = await deps.store.listFilesByHost(host.uuid);
  return backups.map((backup) => {
    const path = given[backup.type] ?? knownPath(files, host, backup.type);
    if (path === undefined) {
      throw new FlowError(
        'bad_input',
        `no path is known for the ${backup.type} file of VM ${vm.name} on host ${host.name}: give one`,
      );
    }
    if (!isValidRoot(path)) throw new FlowError('bad_input', `${path} is not an absolute, normalized path`);
    const recorded = files.find((f) => f.hostUuid === host.uuid && f.type === backup.type);
    if (recorded !== undefined && recorded.path !== path) {
      throw new FlowError(
        'conflict',
        `VM ${vm.name}'s ${backup.type} file on host ${host.name} is ${recorded.path}: restore it there, not to ${path}`,
      );
    }
    const holder = onHost.find((f) => f.path === path && (f.vmUuid !== vm.uuid || f.type !== backup.type));
    if (holder !== undefined) {
      throw new FlowError('conflict', `${path} on host ${host.name} is another file's (VM ${holder.vmUuid})`);
    }
    if (createHash('sha256').update(backup.content).digest('hex') !== backup.sha256) {
      throw new FlowError('conflict', `the ${backup.type} backup of VM ${vm.name} does not match its sha256`);
    }
    return { backup, path };
  });
}

/** The VM's row of that type on the host, else its most recently written one elsewhere. */
function knownPath(files: readonly VmHostFile[], host: Host, type: FileType): string | undefined {
  const ofType = files.filter((f) => f.type === type);
  const here = ofType.find((f) => f.hostUuid === host.uuid);
  if (here !== undefined) return here.path;
  return ofType.sort((a, b) => b.lastSyncAt - a.lastSyncAt)[0]?.path;
}

async function writeOnHost(
  deps: FlowDeps,
  host: Host,
  plan: readonly Planned[],
): Promise<{ results: readonly (ApplyResult | undefined)[]; error?: string }> {
  const ops = plan.map(({ backup, path }) => writeOp(backup.type, path, backup.content));
  try {
    const answer = await deps.agents.send(host, 'files.apply', { ops });
    await deps.store.setHostState(host.uuid, 'Connected', deps.now());
    return { results: plan.map((_, i) => answer.results[i]) };
  } catch (error) {
    if (!isAgentCallError(error)) throw error;
    if (error.failure === 'unreachable' || error.failure === 'timeout')
      await deps.store.setHostState(host.uuid, 'Disconnected');
    return { results: plan.map(() => undefined), error: `${error.failure}: ${error.message}` };
  }
}

/**
 * Records the files written, in one transaction with the operation's end: a pending deletion at a path written is
 * cancelled, and the key binding it held back settled.
 */
async function record(
  deps: FlowDeps,
  operationId: string,
  vm: Vm,
  host: Host,
  plan: readonly Planned[],
  results: readonly (ApplyResult | undefined)[],
  error: string | undefined,
): Promise<RestoreReport> {
  const now = deps.now();
  return deps.store.transaction(async (tx) => {
    const files: RestoredFile[] = [];
    for (const [i, { backup, path }] of plan.entries()) {
      const file = { type: backup.type, path, sha256: backup.sha256, size: backup.content.byteLength };
      const result = results[i];
      if (result?.status !== 'written' || result.path !== path) {
        const reason = error ?? (result?.error ? `${result.error.code}: ${result.error.message}` : 'no result');
        files.push({ ...file, status: 'failed', reason });
        continue;
      }
      await recordWrite(tx, { ...file, vmUuid: vm.uuid, hostUuid: host.uuid, lastSyncAt: now });
      files.push({ ...file, status: 'written' });
    }
    const report: RestoreReport = {
      operationId,
      vmUuid: vm.uuid,
      vmName: vm.name,
      hostUuid: host.uuid,
      hostName: host.name,
      commands: 1,
      ...(error === undefined ? {} : { error }),
      files,
    };
    const state = files.every((f) => f.status === 'written') ? 'done' : 'failed';
    await tx.finishOperation(operationId, state, report);
    return report;
  });
}

async function recordWrite(tx: StoreTx, file: Omit<VmHostFile, 'uuid'>): Promise<void> {
  const { cancelled } = await tx.upsertFile({ uuid: randomUUID(), ...file });
  // The new file replaced a removed TPM's state at this path: that TPM may have nothing left pending.
  const oldTpm = cancelled?.tpmUuid ?? null;
  if (oldTpm !== null && (await tx.getKeyBinding(oldTpm)) !== null) await settleBinding(tx, oldTpm);
}

/** Repeats a restore the controller was killed in, to the same host and paths: writes of the same bytes. */
export async function resumeRestore(deps: FlowDeps, operation: Operation): Promise<'done' | 'failed'> {
  return repeatFlow(deps, operation, async (input) => {
    const { vm, host, paths } = input;
    if (typeof vm !== 'string' || typeof host !== 'string') return 'the input cannot be read';
    if ((await deps.store.getVm(vm)) === null) return 'the VM no longer exists';
    const given = typeof paths === 'object' && paths !== null ? (paths as Partial<Record<FileType, string>>) : {};
    await restoreVm(deps, vm, { host, paths: given }, operation.id);
    return null;
  });
}

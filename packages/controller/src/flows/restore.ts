// Restore: a VM's backups written back onto a host (its current one by default, e.g. after it moved) and recorded,
// with writeFile's guarantees (place.ts): checked before sending, guarded, a pending deletion at a path cancelled.
import { randomUUID } from 'node:crypto';
import { isValidRoot, type FileType, type StatResult } from '@hostfiles/shared';
import { isAgentCallError } from '../agents/index.js';
import type { BackupFile, Host, Operation, Vm, VmHostFile } from '../store/index.js';
import { FlowError, isFlowError, type FlowDeps } from './deps.js';
import { libvirtPaths } from './adopt.js';
import { bytesOf } from './bytes-of.js';
import { resolveHost } from './inventory.js';
import { vmKey, wholeHost } from './lock-keys.js';
import { placeOnHost, planPlacements, type PlacedFile, type Placement } from './place.js';
import { resolveVm } from './resolve.js';
import { checkState, type State } from './state.js';
import { failJournalOnError, repeatFlow, startJournal } from './sync.js';
import { OPERATION_KIND } from '../store/types.js';

export const RESTORE_VM = OPERATION_KIND.restoreVm;

export interface RestoreOptions {
  /** the host to write on; default: the VM's current host */
  readonly host?: string;
  /** where each type goes on that host; default: see `restoreVm` */
  readonly paths?: Readonly<Partial<Record<FileType, string>>>;
  /**
   * write over state hostfiles does not know at a new path; and restore a generation older than the newest of its
   * type
   */
  readonly force?: boolean;
  /** only this type's state (its newest generation, or `generation`), the other type left as it is */
  readonly type?: FileType;
  /** this generation instead of the newest, of `type` (which may be left out when the VM has generations of one) */
  readonly generation?: number;
}

export type RestoredFile = PlacedFile;

export interface RestoreReport {
  readonly operationId: string;
  readonly vmUuid: string;
  readonly vmName: string;
  readonly hostUuid: string;
  readonly hostName: string;
  readonly commands: number;
  /** why the host could not be reached or refused the command, if it did */
  readonly error?: string;
  /** the generation written of each type */
  readonly generations: readonly { readonly type: FileType; readonly generation: number }[];
  readonly files: readonly RestoredFile[];
}

/**
 * Asks the host of the VM's own states a restore writes over, with one `files.stat`, and refuses:
 * - (busy) when one is in use by a running swtpm or QEMU, force or not: the agent would refuse that state alone and
 *   write the others, leaving the VM with generations of two times;
 * - (conflict, unless forced) when one is not the state recorded there: it changed since (a running VM's last writes,
 *   never synced), so no backup holds it, and written over it would be gone for good — newer, maybe, than every
 *   generation.
 * A host that cannot answer is left to the write, which fails the same way. A state gone from the host is what a
 * restore is for: written.
 */
async function refuseUncaptured(
  deps: FlowDeps,
  host: Host,
  vm: Vm,
  planned: readonly { readonly path: string; readonly own: VmHostFile | null }[],
  force: boolean,
): Promise<void> {
  const own = planned.flatMap((p) => (p.own !== null && p.own.path === p.path ? [p.own] : []));
  if (own.length === 0) return;
  let results: readonly StatResult[];
  try {
    const files = own.map(({ type, path }) => ({ type, path }));
    results = (await deps.agents.send(host, 'files.stat', { files }, { bytes: bytesOf(own) })).results;
  } catch (error) {
    if (isAgentCallError(error)) return;
    throw error;
  }
  /** The VM's states there whose stat is present and passes `test`, named for a message. */
  const statesWhere = (test: (found: Extract<StatResult, { status: 'present' }>, row: VmHostFile) => boolean) =>
    own
      .filter((row, i) => {
        const found = results[i];
        return found?.status === 'present' && test(found, row);
      })
      .map((row) => `${row.type} state ${row.path}`)
      .join(' and ');
  const busy = statesWhere((found) => found.busy);
  if (busy !== '') {
    throw new FlowError(
      'busy',
      `VM ${vm.name}'s ${busy} on ${host.name} is in use by a running swtpm or QEMU: stop the VM first; nothing ` +
        'was written (its other states would have been, and the VM left with two times)',
    );
  }
  const changed = statesWhere((found, row) => found.sha256 !== row.sha256);
  if (changed === '' || force) return;
  throw new FlowError(
    'conflict',
    `VM ${vm.name}'s ${changed} on ${host.name} changed since it was last recorded, and no backup holds it: ` +
      `\`hostfiles sync ${vm.name}\` captures it first (a restore of an older generation then names it), or ` +
      'force writes over it',
  );
}

/**
 * Writes every backup of the VM (one per type, a whole state each) onto the host in one command, then records each
 * state written. The path of a type is, in order: the one given; the VM's state of that type already recorded on
 * that host; libvirt's layout below that host's agent roots (`<TpmState>/<uuid>` for a directory state,
 * `<NvRam>/<name>_VARS.fd` for a file); the path of its most recently synced state of that type on any other host;
 * with none of those, the restore is refused before anything is sent. Refused too: a path another VM's
 * state holds, a path other than the one the VM's state of that type has on that host, and (without `force`) a new
 * path where the host holds state hostfiles does not know.
 */
export async function restoreVm(
  deps: FlowDeps,
  vmRef: string,
  options: RestoreOptions = {},
  operationId: string = randomUUID(),
  /** a resumed restore's: the generations it journaled, written again, whatever is newest now */
  chosen?: readonly { readonly type: FileType; readonly generation: number }[],
): Promise<RestoreReport> {
  const resolved = await resolveVm(deps.store, vmRef);
  const hostRef = options.host ?? resolved.hostUuid;
  if (hostRef === null) throw new FlowError('bad_input', `VM ${resolved.name} is on no host: name one`);
  const host = await resolveHost(deps, hostRef);
  // The whole host: a restore's paths may be libvirt's layout below the agent's roots, known only once it is asked.
  return deps.queue.run([vmKey(resolved.uuid), wholeHost(host.uuid)], async () => {
    const vm = await deps.store.getVm(resolved.uuid);
    if (vm === null) throw new FlowError('not_found', `no VM ${vmRef}`);
    const backups =
      chosen === undefined ? await backupsToRestore(deps, vm, options) : await journaledGenerations(deps, vm, chosen);
    const placements = await planRestore(deps, vm, host, backups, options.paths ?? {});
    const planned = await planPlacements(deps, host, placements, options.force === true);
    if (chosen === undefined) await refuseUncaptured(deps, host, vm, planned, options.force === true);
    const generations = backups.map((b) => ({ type: b.type, generation: b.generation }));
    const input = {
      vm: vm.uuid,
      host: host.uuid,
      paths: Object.fromEntries(placements.map((p) => [p.type, p.path])),
      force: options.force === true,
      // Every generation chosen, so that a resumed restore writes the same ones.
      generations,
    };
    await startJournal(deps, { id: operationId, kind: RESTORE_VM, subject: vm.uuid, step: 'write', input });
    return failJournalOnError(deps, operationId, async () => {
      const { files, error } = await placeOnHost(deps, host, planned, undefined, { bumpEpoch: true });
      const report: RestoreReport = {
        operationId,
        vmUuid: vm.uuid,
        vmName: vm.name,
        hostUuid: host.uuid,
        hostName: host.name,
        commands: 1,
        ...(error === undefined ? {} : { error }),
        generations,
        files,
      };
      const state = files.every((f) => f.status === 'written') ? 'done' : 'failed';
      await deps.store.finishOperation(operationId, state, report);
      return report;
    });
  });
}

/**
 * The generations a resumed restore or recover began with: the same bytes again (`not_found` when one was pruned
 * since).
 */
export async function journaledGenerations(
  deps: FlowDeps,
  vm: Vm,
  chosen: readonly { readonly type: FileType; readonly generation: number }[],
): Promise<BackupFile[]> {
  const backups: BackupFile[] = [];
  for (const { type, generation } of chosen) {
    const backup = await deps.store.getGeneration(vm.uuid, type, generation);
    if (backup === null) throw new FlowError('not_found', `VM ${vm.name}'s ${type} generation ${generation} is gone`);
    backups.push(backup);
  }
  return backups;
}

/**
 * The newest generation of each type, or of the type asked for; or the generation asked for, refused (`conflict`) when
 * it is older than the newest of its type unless forced: a restore over a newer state is a decision, never a slip of
 * the finger.
 */
async function backupsToRestore(deps: FlowDeps, vm: Vm, options: RestoreOptions): Promise<BackupFile[]> {
  const newest = await deps.store.listBackupsByVm(vm.uuid);
  if (newest.length === 0) throw new FlowError('not_found', `VM ${vm.name} has no backup: sync it first`);
  const { type: askedType, generation: asked } = options;
  if (asked === undefined) {
    if (askedType === undefined) return newest;
    const ofType = newest.filter((b) => b.type === askedType);
    if (ofType.length === 0)
      throw new FlowError('not_found', `VM ${vm.name} has no ${askedType} backup: sync it first`);
    return ofType;
  }
  if (askedType === undefined && newest.length > 1) {
    throw new FlowError('bad_input', `VM ${vm.name} has generations of ${newest.length} types: name the type`);
  }
  const type = askedType ?? newest[0]?.type ?? 'TpmState';
  const backup = await deps.store.getGeneration(vm.uuid, type, asked);
  if (backup === null) {
    throw new FlowError('not_found', `VM ${vm.name} has no ${type} generation ${asked} (see state history)`);
  }
  const latest = newest.find((b) => b.type === type);
  if (latest !== undefined && latest.generation > backup.generation && options.force !== true) {
    throw new FlowError(
      'conflict',
      `generation ${backup.generation} of VM ${vm.name}'s ${type} is older than its newest, ${latest.generation}: ` +
        'restoring it over the newer state needs force',
    );
  }
  return [backup];
}

export async function planRestore(
  deps: FlowDeps,
  vm: Vm,
  host: Host,
  backups: readonly BackupFile[],
  given: Readonly<Partial<Record<FileType, string>>>,
): Promise<Placement[]> {
  // A path given for a type not written (none backed up, or another type asked for) is refused, never left unused.
  const written = backups.map((b) => b.type);
  for (const type of Object.keys(given)) {
    if (!written.some((w) => w === type)) {
      throw new FlowError(
        'bad_input',
        `a ${type} path was given, but this restore of VM ${vm.name} writes only ${written.join(' and ')}`,
      );
    }
  }
  const files = await deps.store.listFilesByVm(vm.uuid);
  const layout = await libvirtLayout(deps, vm, host, files, backups);
  const placements: Placement[] = [];
  for (const backup of backups) {
    const path = given[backup.type] ?? knownPath(files, host, backup, layout);
    if (path === undefined) {
      throw new FlowError(
        'bad_input',
        `no path is known for the ${backup.type} state of VM ${vm.name} on host ${host.name}: give one`,
      );
    }
    if (!isValidRoot(path)) throw new FlowError('bad_input', `${path} is not an absolute, normalized path`);
    const recorded = files.find((f) => f.hostUuid === host.uuid && f.type === backup.type);
    if (recorded !== undefined && recorded.path !== path) {
      throw new FlowError(
        'conflict',
        `VM ${vm.name}'s ${backup.type} state on host ${host.name} is ${recorded.path}: restore it there, not to ${path}`,
      );
    }
    const state = await backupState(deps, backup);
    const problem = await checkState(state);
    if (problem !== null) {
      throw new FlowError('conflict', `the ${backup.type} backup of VM ${vm.name} is damaged: ${problem}`);
    }
    placements.push({ vm, type: backup.type, path, state });
  }
  return placements;
}

async function backupState(deps: FlowDeps, backup: BackupFile): Promise<State> {
  const entries = await deps.store.listBackupEntries(backup.uuid);
  return { kind: backup.kind, sha256: backup.sha256, size: backup.size, entries };
}

/** The kinds libvirt gives each type: a vTPM is a directory, NVRAM a file. */
const LIBVIRT_KIND: Readonly<Record<FileType, BackupFile['kind']>> = { TpmState: 'dir', NvRam: 'file' };

/**
 * libvirt's paths on the host (below its agent's roots, asked only when a backup has no row there), for the backups
 * whose kind fits that layout.
 */
async function libvirtLayout(
  deps: FlowDeps,
  vm: Vm,
  host: Host,
  files: readonly VmHostFile[],
  backups: readonly BackupFile[],
): Promise<Partial<Record<FileType, string>>> {
  const fits = backups.filter(
    (b) => b.kind === LIBVIRT_KIND[b.type] && !files.some((f) => f.hostUuid === host.uuid && f.type === b.type),
  );
  if (fits.length === 0) return {};
  const { roots } = await deps.agents.send(host, 'files.stat', { files: [] });
  const paths = libvirtPaths(vm, roots);
  return Object.fromEntries(fits.map((b) => [b.type, paths[b.type]]));
}

/**
 * The VM's row of that type on the host; else libvirt's layout below that host's roots (for a backup of the kind it
 * lays out); else the VM's most recently synced path elsewhere (hosts sharing their roots' layout).
 */
function knownPath(
  files: readonly VmHostFile[],
  host: Host,
  backup: BackupFile,
  layout: Partial<Record<FileType, string>>,
): string | undefined {
  const ofType = files.filter((f) => f.type === backup.type);
  const here = ofType.find((f) => f.hostUuid === host.uuid);
  if (here !== undefined) return here.path;
  return layout[backup.type] ?? ofType.sort((a, b) => b.lastSyncAt - a.lastSyncAt)[0]?.path;
}

/** Repeats a restore the controller was killed in, to the same host and paths: writes of the same bytes. */
export async function resumeRestore(deps: FlowDeps, operation: Operation): Promise<'done' | 'failed'> {
  return repeatFlow(deps, operation, async (input) => {
    const { vm, host, paths, force, generations } = input;
    if (typeof vm !== 'string' || typeof host !== 'string') return 'the input cannot be read';
    if ((await deps.store.getVm(vm)) === null) return 'the VM no longer exists';
    const given = typeof paths === 'object' && paths !== null ? (paths as Partial<Record<FileType, string>>) : {};
    const options: RestoreOptions = { host, paths: given, force: force === true };
    // The generations the restore began with, chosen when it was journaled: not whatever is newest now. (A journal
    // from before generations has none: the newest, as then.)
    const chosen = Array.isArray(generations) ? (generations as { type: FileType; generation: number }[]) : undefined;
    try {
      await restoreVm(deps, vm, options, operation.id, chosen);
    } catch (error) {
      // Before anything was sent (a generation pruned since, the host gone): it cannot go on, ever.
      if (isFlowError(error) && error.code === 'not_found') return error.message;
      throw error;
    }
    return null;
  });
}

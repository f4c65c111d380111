// Adopt: register a VM's state that is already on a host (libvirt made it) without copying it: the controller asks
// the agent what is there (`files.stat`) and records each state with its digest; optionally backs it up at once.
import { randomUUID } from 'node:crypto';
import { posix } from 'node:path';
import { isValidRoot, type FileType, type Roots, type StateKind, type StatResult } from '@hostfiles/shared';
import type { Host, Vm, VmHostFile } from '../store/index.js';
import { FlowError, type FlowDeps } from './deps.js';
import { markHost } from './host-state.js';
import { resolveHost } from './inventory.js';
import { vmKey, wholeHost } from './lock-keys.js';
import { resolveVm } from './resolve.js';
import { syncVm, type SyncReport } from './sync.js';
import { OPERATION_KIND } from '../store/types.js';

export interface AdoptOptions {
  /** default: the VM's current host */
  readonly host?: string;
  /** default: libvirt's layout, `<TpmState root>/<vm uuid>` and, for UEFI, `<NvRam root>/<vm name>_VARS.fd` */
  readonly paths?: Readonly<Partial<Record<FileType, string>>>;
  /** sync the VM right after: its backups then hold what was adopted */
  readonly backup?: boolean;
}

export type AdoptedState = {
  readonly type: FileType;
  readonly path: string;
} & (
  | {
      readonly status: 'adopted';
      readonly kind: StateKind;
      readonly sha256: string;
      readonly size: number;
      /** a running swtpm or QEMU holds it: recorded all the same (adopting writes nothing) */
      readonly busy: boolean;
    }
  | { readonly status: 'absent' }
);

export interface AdoptReport {
  /** the operation that journaled the adoption (`vm.adopt`) */
  readonly operationId: string;
  readonly vmUuid: string;
  readonly vmName: string;
  readonly hostUuid: string;
  readonly hostName: string;
  readonly states: readonly AdoptedState[];
  /** with `backup`: the sync that followed */
  readonly backup: SyncReport | null;
}

/** libvirt's paths for a VM's state below the agent's roots. */
export function libvirtPaths(vm: Vm, roots: Roots): Partial<Record<FileType, string>> {
  return {
    TpmState: posix.join(roots.TpmState, vm.uuid),
    ...(vm.bootMode === 'UEFI' ? { NvRam: posix.join(roots.NvRam, `${vm.name}_VARS.fd`) } : {}),
  };
}

export const ADOPT_VM = OPERATION_KIND.adoptVm;

export async function adoptVm(deps: FlowDeps, vmRef: string, options: AdoptOptions = {}): Promise<AdoptReport> {
  const operationId = randomUUID();
  const resolved = await resolveVm(deps.store, vmRef);
  const hostRef = options.host ?? resolved.hostUuid;
  if (hostRef === null) throw new FlowError('bad_input', `VM ${resolved.name} is on no host: name one`);
  const host = await resolveHost(deps, hostRef);
  // The whole host: libvirt's paths lie below the agent's roots, known only once it is asked.
  const report = await deps.queue.run([vmKey(resolved.uuid), wholeHost(host.uuid)], async () => {
    const vm = await resolveVm(deps.store, resolved.uuid);
    const paths = await pathsToAdopt(deps, vm, host, options.paths ?? {});
    const found = await statOn(deps, host, paths);
    const base = { operationId, vmUuid: vm.uuid, vmName: vm.name, hostUuid: host.uuid, hostName: host.name };
    const states = await record(deps, vm, host, found, base);
    if (!states.some((s) => s.status === 'adopted')) {
      throw new FlowError(
        'not_found',
        `no state of VM ${vm.name} on host ${host.name} at ${paths.map((p) => p.path).join(' or ')}`,
      );
    }
    return { ...base, states };
  });
  // After the queue: the sync queues on the VM itself.
  const backup = options.backup === true ? await syncVm(deps, report.vmUuid, undefined, 'adopt') : null;
  return { ...report, backup };
}

async function pathsToAdopt(
  deps: FlowDeps,
  vm: Vm,
  host: Host,
  given: Readonly<Partial<Record<FileType, string>>>,
): Promise<{ type: FileType; path: string }[]> {
  // A stat of nothing answers the agent's roots, signed: libvirt's layout is found below them.
  const roots = (await deps.agents.send(host, 'files.stat', { files: [] })).roots;
  const paths = { ...libvirtPaths(vm, roots), ...given };
  return (Object.entries(paths) as [FileType, string][]).map(([type, path]) => {
    if (!isValidRoot(path)) throw new FlowError('bad_input', `${path} is not an absolute, normalized path`);
    return { type, path };
  });
}

async function statOn(
  deps: FlowDeps,
  host: Host,
  paths: readonly { type: FileType; path: string }[],
): Promise<StatResult[]> {
  const answer = await deps.agents.send(host, 'files.stat', { files: paths.map(({ type, path }) => ({ type, path })) });
  await markHost(deps, host, 'Connected');
  return paths.map((p, i) => {
    const result = answer.results[i];
    if (result === undefined || result.path !== p.path) throw new FlowError('unavailable', 'the agent gave no answer');
    if (result.status === 'failed') {
      throw new FlowError('conflict', `${p.path} on host ${host.name}: ${result.error.code}: ${result.error.message}`);
    }
    return result;
  });
}

/**
 * Records every state found, in one transaction that also journals the adoption, started and finished there: nothing
 * before it changed anything, so a controller stopped before it commits has nothing to resume.
 */
async function record(
  deps: FlowDeps,
  vm: Vm,
  host: Host,
  found: readonly StatResult[],
  base: Omit<AdoptReport, 'states' | 'backup'>,
): Promise<AdoptedState[]> {
  return deps.store.transaction(async (tx) => {
    const rows = await tx.listFilesByHost(host.uuid);
    const pending = await tx.listPendingDeletions({ hostUuid: host.uuid });
    const tpmUuid = (await tx.getTpmByVm(vm.uuid))?.uuid ?? null;
    const states: AdoptedState[] = [];
    for (const result of found) {
      if (result.status !== 'present') {
        states.push({ type: result.type, path: result.path, status: 'absent' });
        continue;
      }
      refuseClash(vm, host, result.type, result.path, rows);
      const doomed = pending.find((p) => result.path.startsWith(`${p.path}/`));
      if (doomed !== undefined) {
        throw new FlowError('conflict', `${result.path} is inside ${doomed.path}, pending deletion on ${host.name}`);
      }
      // Recording the path cancels the deletions pending at and below it. Only the VM's own may go that way (its
      // guard, its earlier path): another VM's, or a removed TPM's, was decided and is not undone by an adopt.
      const within = (path: string): boolean => path === result.path || path.startsWith(`${result.path}/`);
      const foreign = pending.find(
        (p) => within(p.path) && (p.vmUuid !== vm.uuid || (p.tpmUuid !== null && p.tpmUuid !== tpmUuid)),
      );
      if (foreign !== undefined) {
        throw new FlowError(
          'conflict',
          `${foreign.path} on host ${host.name} is pending deletion (${foreign.tpmUuid === null ? `VM ${foreign.vmUuid}` : `removed TPM ${foreign.tpmUuid}`}): ` +
            'adopting it would undo that; let the deletion finish first (hostfiles retry)',
        );
      }
      await tx.upsertFile({
        uuid: randomUUID(),
        vmUuid: vm.uuid,
        hostUuid: host.uuid,
        type: result.type,
        path: result.path,
        kind: result.kind,
        sha256: result.sha256,
        size: result.size,
        lastSyncAt: deps.now(),
      });
      const { type, path, kind, sha256, size, busy } = result;
      states.push({ type, path, status: 'adopted', kind, sha256, size, busy });
    }
    if (states.some((s) => s.status === 'adopted')) {
      const input = { vm: vm.uuid, host: host.uuid, paths: found.map((f) => ({ type: f.type, path: f.path })) };
      const { operationId: id } = base;
      await tx.startOperation({ id, kind: ADOPT_VM, subject: vm.uuid, step: 'record', input });
      await tx.finishOperation(id, 'done', { ...base, states });
    }
    return states;
  });
}

/** Another VM's state at, inside or around the path, or the VM's own state of that type elsewhere on the host. */
function refuseClash(vm: Vm, host: Host, type: FileType, path: string, rows: readonly VmHostFile[]): void {
  const near = (a: string, b: string): boolean => a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`);
  for (const row of rows) {
    if (row.vmUuid === vm.uuid && row.type === type) {
      // A row inside the adopted state (0.1 recorded `<uuid>/tpm2/tpm2-00.permall` as a file) is taken up by it.
      if (row.path !== path && !row.path.startsWith(`${path}/`)) {
        throw new FlowError(
          'conflict',
          `VM ${vm.name}'s ${type} state on host ${host.name} is recorded at ${row.path}, not ${path}`,
        );
      }
    } else if (near(row.path, path)) {
      throw new FlowError(
        'conflict',
        `${path} on host ${host.name} overlaps VM ${row.vmUuid}'s ${row.type} state ${row.path}`,
      );
    }
  }
}

// The removal of TPMs from VMs (DESIGN.md): collect, group by host, dispatch, purge with the outbox, key bindings.
import type { FileType } from '@hostfiles/shared';
import { randomUUID } from 'node:crypto';
import type { BackupFile, NewPendingDeletion, StoreTx, Tpm, Vm, VmHostFile } from '../store/index.js';
import { FlowError, type FlowDeps } from './deps.js';
import { deleteOnHosts, type HostReport } from './dispatch.js';
import { needsNvram, resolveVm } from './resolve.js';

export const REMOVE_TPM = 'tpm.remove';

export interface VmRemoval {
  readonly vmUuid: string;
  readonly vmName: string;
  readonly tpmUuid: string;
  /** NVRAM is deleted only when the VM no longer needs it: UEFI without secure boot. */
  readonly nvram: 'deleted' | 'kept: secure boot' | 'none: legacy boot';
  readonly binding: 'detached' | 'detaching';
}

export interface PendingFile {
  readonly hostUuid: string;
  readonly type: FileType;
  readonly path: string;
  readonly vmUuid: string;
  readonly reason: string;
}

export interface RemovalReport {
  readonly operationId: string;
  readonly vms: readonly VmRemoval[];
  readonly hosts: readonly HostReport[];
  readonly commands: number;
  readonly pending: readonly PendingFile[];
}

interface Collected {
  readonly vm: Vm;
  readonly tpm: Tpm;
  readonly files: readonly VmHostFile[];
  readonly backups: readonly BackupFile[];
  readonly nvram: VmRemoval['nvram'];
}

/** Removes the TPMs of the named VMs in one flow: N VMs on H hosts cost at most H commands (≤ 1000 files each). */
export async function removeTpms(
  deps: FlowDeps,
  vmRefs: readonly string[],
  operationId: string = randomUUID(),
): Promise<RemovalReport> {
  if (vmRefs.length === 0) throw new FlowError('bad_input', 'name at least one VM');
  const vms = await Promise.all(vmRefs.map((ref) => resolveVm(deps.store, ref)));
  return deps.queue.run(
    vms.map((vm) => vm.uuid),
    async () => {
      const existing = await deps.store.getOperation(operationId);
      if (existing === null) {
        const subject = vms.map((vm) => vm.uuid).join(',');
        await deps.store.startOperation({
          id: operationId,
          kind: REMOVE_TPM,
          subject,
          step: 'collect',
          input: { vms: vms.map((vm) => vm.uuid) },
        });
      }
      const collected = await collect(deps, vms);
      await deps.store.setOperationStep(operationId, 'dispatch');
      const files = collected.flatMap((c) => c.files);
      const hosts = await deleteOnHosts(deps, files, REMOVE_TPM);
      return purge(deps, operationId, collected, hosts);
    },
  );
}

/** Step 1. Every VM must have a TPM: a removal that names a VM without one is refused before anything is done. */
async function collect(deps: FlowDeps, vms: readonly Vm[]): Promise<Collected[]> {
  return Promise.all(
    vms.map(async (vm) => {
      const tpm = await deps.store.getTpmByVm(vm.uuid);
      if (tpm === null) throw new FlowError('not_found', `VM ${vm.name} has no TPM`);
      const dropNvram = vm.bootMode === 'UEFI' && !needsNvram(vm, false);
      const types: FileType[] = dropNvram ? ['TpmState', 'NvRam'] : ['TpmState'];
      const files = (await deps.store.listFilesByVm(vm.uuid)).filter((f) => types.includes(f.type));
      const backups = (await deps.store.listBackupsByVm(vm.uuid)).filter((b) => types.includes(b.type));
      const nvram: VmRemoval['nvram'] =
        vm.bootMode === 'Legacy' ? 'none: legacy boot' : dropNvram ? 'deleted' : 'kept: secure boot';
      return { vm, tpm, files, backups, nvram };
    }),
  );
}

/** Steps 4 and 5, in one transaction: rows purged, every unconfirmed file in the outbox, bindings settled. */
async function purge(
  deps: FlowDeps,
  operationId: string,
  collected: readonly Collected[],
  hosts: readonly HostReport[],
): Promise<RemovalReport> {
  const outcomes = new Map(hosts.flatMap((h) => h.files.map((f) => [`${f.hostUuid}\0${f.path}`, f] as const)));
  const now = deps.now();
  const pending: PendingFile[] = [];
  const rows: NewPendingDeletion[] = [];
  for (const { vm, tpm, files } of collected) {
    for (const file of files) {
      const outcome = outcomes.get(`${file.hostUuid}\0${file.path}`);
      if (outcome?.status === 'deleted' || outcome?.status === 'absent') continue;
      const reason = outcome?.status === 'unconfirmed' ? outcome.reason : 'not sent';
      pending.push({ hostUuid: file.hostUuid, type: file.type, path: file.path, vmUuid: vm.uuid, reason });
      rows.push({
        hostUuid: file.hostUuid,
        type: file.type,
        path: file.path,
        vmUuid: vm.uuid,
        // NVRAM belongs to the firmware, not the TPM: only TPM state holds the key binding back.
        tpmUuid: file.type === 'TpmState' ? tpm.uuid : null,
        nextAttemptAt: now + deps.retryBaseMs,
        lastError: reason,
      });
    }
  }
  return deps.store.transaction(async (tx) => {
    await tx.deleteFiles(collected.flatMap((c) => c.files.map((f) => f.uuid)));
    await tx.deleteBackups(collected.flatMap((c) => c.backups.map((b) => b.uuid)));
    await tx.addPendingDeletions(rows);
    const vms: VmRemoval[] = [];
    for (const { vm, tpm, nvram } of collected) {
      await tx.removeTpm(tpm.uuid);
      const binding = await settleBinding(tx, tpm.uuid);
      vms.push({ vmUuid: vm.uuid, vmName: vm.name, tpmUuid: tpm.uuid, nvram, binding });
    }
    const report: RemovalReport = {
      operationId,
      vms,
      hosts,
      commands: hosts.reduce((n, h) => n + h.commands, 0),
      pending,
    };
    await tx.finishOperation(operationId, 'done', report);
    return report;
  });
}

/** Step 5: the binding is detached only once none of the TPM's state files remain on any host. */
export async function settleBinding(tx: StoreTx, tpmUuid: string): Promise<'detached' | 'detaching'> {
  if ((await tx.countPendingDeletionsForTpm(tpmUuid)) > 0) {
    await tx.setKeyBindingState(tpmUuid, 'detaching');
    return 'detaching';
  }
  if ((await tx.getKeyBinding(tpmUuid)) !== null) await tx.deleteKeyBinding(tpmUuid);
  return 'detached';
}

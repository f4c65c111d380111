// The removal of TPMs from VMs (DESIGN.md): collect, group by host, dispatch, purge with the outbox, key bindings.
import type { FileType } from '@hostfiles/shared';
import { randomUUID } from 'node:crypto';
import type { BackupFile, StoreTx, Tpm, Vm, VmHostFile } from '../store/index.js';
import { FlowError, type FlowDeps } from './deps.js';
import { deleteOnHosts, planOnHosts, type HostReport } from './dispatch.js';
import { forgetDeleted, isConfirmed, outcomesOf, unconfirmed, type PendingFile } from './outbox.js';
import { refuseBusy } from './probe.js';
import { needsNvram, resolveVms } from './resolve.js';
import { planOnVms, runPlanned } from './run-planned.js';
import { groupBy } from './group-by.js';
import { OPERATION_KIND } from '../store/types.js';

export const REMOVE_TPM = OPERATION_KIND.removeTpm;
export type { PendingFile };

export interface VmRemoval {
  readonly vmUuid: string;
  readonly vmName: string;
  readonly tpmUuid: string;
  /** NVRAM is deleted only when the VM no longer needs it: UEFI without secure boot. */
  readonly nvram: 'deleted' | 'kept: secure boot' | 'none: legacy boot';
  readonly binding: 'detached' | 'detaching';
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
export interface RemoveOptions {
  /** go ahead although a VM's swtpm runs: its state's deletion waits in the outbox until swtpm stops */
  readonly force?: boolean;
}

export async function removeTpms(
  deps: FlowDeps,
  vmRefs: readonly string[],
  operationId: string = randomUUID(),
  options: RemoveOptions = {},
): Promise<RemovalReport> {
  if (vmRefs.length === 0) throw new FlowError('bad_input', 'name at least one VM');
  // One VM named twice (by name and by uuid) is removed once.
  const vms = [...new Map((await resolveVms(deps.store, vmRefs)).map((vm) => [vm.uuid, vm])).values()];
  const uuids = vms.map((vm) => vm.uuid);
  return runPlanned(
    deps,
    () => planOnVms(deps, uuids),
    // Every state of these VMs, read again under their keys: nothing changes them now.
    async (states) => {
      // Read again inside the queue (a flow that held it may have changed them), and collect before journaling:
      // a refused removal leaves no operation behind for a resume to carry out.
      const current = await resolveVms(deps.store, uuids);
      const collected = await collect(deps, current, states);
      const existing = await deps.store.getOperation(operationId);
      // Up front, before anything is journaled or sent: a running VM's TPM is not removed unless forced. A resumed
      // removal already began, so it carries on (the agents still refuse to delete a state whose lock is held).
      const names = new Map(current.map((vm) => [vm.uuid, vm.name]));
      const down = await refuseBusy(
        deps,
        collected.flatMap((c) => c.files),
        options.force === true || existing !== null,
        (uuid) => names.get(uuid) ?? uuid,
      );
      if (existing === null) {
        await deps.store.startOperation({
          id: operationId,
          kind: REMOVE_TPM,
          subject: current.map((vm) => vm.uuid).join(','),
          step: 'collect',
          input: { vms: current.map((vm) => vm.uuid), tpms: collected.map((c) => c.tpm.uuid) },
        });
      }
      await deps.store.setOperationStep(operationId, 'dispatch');
      const files = collected.flatMap((c) => c.files);
      const hosts = await deleteOnHosts(deps, files, REMOVE_TPM, down);
      return purge(deps, operationId, collected, hosts);
    },
  );
}

/** A removal's report, as a dry run gives it: no operation, nothing pending. */
export type RemovalPlan = Omit<RemovalReport, 'operationId' | 'pending'> & { readonly dryRun: true };

/**
 * `tpm remove --dry-run`: the report `removeTpms` would give were every deletion confirmed (each file 'planned', each
 * binding detached), refused as it would be (a VM without a TPM). It reads only: no journal row, no lease, no command
 * to any host (not even the busy probe).
 */
export async function planRemoveTpms(deps: FlowDeps, vmRefs: readonly string[]): Promise<RemovalPlan> {
  if (vmRefs.length === 0) throw new FlowError('bad_input', 'name at least one VM');
  const vms = [...new Map((await resolveVms(deps.store, vmRefs)).map((vm) => [vm.uuid, vm])).values()];
  const collected = await collect(deps, vms, await deps.store.listFilesByVms(vms.map((vm) => vm.uuid)));
  const hosts = await planOnHosts(
    deps,
    collected.flatMap((c) => c.files),
  );
  return {
    dryRun: true,
    vms: collected.map(({ vm, tpm, nvram }) => ({
      vmUuid: vm.uuid,
      vmName: vm.name,
      tpmUuid: tpm.uuid,
      nvram,
      binding: 'detached',
    })),
    hosts,
    commands: hosts.reduce((n, h) => n + h.commands, 0),
  };
}

/** Step 1. Every VM must have a TPM: a removal that names a VM without one is refused before anything is done. */
async function collect(deps: FlowDeps, vms: readonly Vm[], states: readonly VmHostFile[]): Promise<Collected[]> {
  const uuids = vms.map((vm) => vm.uuid);
  // Batched reads whatever the number of VMs.
  const tpms = new Map((await deps.store.listTpmsByVms(uuids)).map((tpm) => [tpm.vmUuid, tpm]));
  const files = groupBy(states, (f) => f.vmUuid);
  const backups = groupBy(await deps.store.listBackupsByVms(uuids), (b) => b.vmUuid);
  return vms.map((vm) => {
    const tpm = tpms.get(vm.uuid);
    if (tpm === undefined) throw new FlowError('not_found', `VM ${vm.name} has no TPM`);
    // NVRAM goes only when the VM will no longer need it: UEFI without secure boot.
    const dropNvram = vm.bootMode === 'UEFI' && !needsNvram(vm, false);
    const keep = (type: FileType): boolean => type === 'TpmState' || dropNvram;
    const nvram: VmRemoval['nvram'] =
      vm.bootMode === 'Legacy' ? 'none: legacy boot' : dropNvram ? 'deleted' : 'kept: secure boot';
    return {
      vm,
      tpm,
      files: (files.get(vm.uuid) ?? []).filter((f) => keep(f.type)),
      backups: (backups.get(vm.uuid) ?? []).filter((b) => keep(b.type)),
      nvram,
    };
  });
}

/** Steps 4 and 5, in one transaction: rows purged, every unconfirmed file in the outbox, bindings settled. */
async function purge(
  deps: FlowDeps,
  operationId: string,
  collected: readonly Collected[],
  hosts: readonly HostReport[],
): Promise<RemovalReport> {
  const { pending, rows } = unconfirmed(
    collected.map(({ tpm, files }) => ({ files, tpmUuid: tpm.uuid })),
    outcomesOf(hosts),
    deps.now() + deps.retryBaseMs,
  );
  const outcome = outcomesOf(hosts);
  return deps.store.transaction(async (tx) => {
    const files = collected.flatMap((c) => c.files);
    await tx.deleteFiles(files.map((f) => f.uuid));
    await forgetDeleted(
      tx,
      files.filter((f) => isConfirmed(outcome(f.hostUuid, f.path))),
    );
    // Every generation of those types goes, not only the newest the collect step read.
    for (const { vm, backups } of collected)
      await tx.deleteGenerations(vm.uuid, [...new Set(backups.map((b) => b.type))]);
    await tx.addPendingDeletions(rows);
    // The binding is detached only once none of the TPM's state remains on any host (step 5): what this removal
    // left pending, and what was pending before (a guard of a write whose outcome is unknown, an earlier path).
    const tpmUuids = collected.map((c) => c.tpm.uuid);
    const held = new Set(await tx.listTpmsWithPendingDeletions(tpmUuids));
    await tx.removeTpms(tpmUuids);
    await tx.setKeyBindingsState(
      tpmUuids.filter((uuid) => held.has(uuid)),
      'detaching',
    );
    await tx.deleteKeyBindings(tpmUuids.filter((uuid) => !held.has(uuid)));
    const vms: VmRemoval[] = collected.map(({ vm, tpm, nvram }) => ({
      vmUuid: vm.uuid,
      vmName: vm.name,
      tpmUuid: tpm.uuid,
      nvram,
      binding: held.has(tpm.uuid) ? 'detaching' : 'detached',
    }));
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

/**
 * Step 5: the binding of a removed TPM is detached only once none of its state remains on any host. A TPM that still
 * exists keeps its binding whatever is pending for it (a guard of its own write, its state's earlier path): only a
 * removal ends it.
 */
export async function settleBinding(tx: StoreTx, tpmUuid: string): Promise<'detached' | 'detaching' | 'attached'> {
  const binding = await tx.getKeyBinding(tpmUuid);
  if (binding !== null && (await tx.getTpmByVm(binding.vmUuid))?.uuid === tpmUuid) return 'attached';
  if ((await tx.countPendingDeletionsForTpm(tpmUuid)) > 0) {
    await tx.setKeyBindingState(tpmUuid, 'detaching');
    return 'detaching';
  }
  if (binding !== null) await tx.deleteKeyBinding(tpmUuid);
  return 'detached';
}

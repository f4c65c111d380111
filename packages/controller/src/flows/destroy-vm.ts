// Destroying a VM: every file of it, both types, on every host it has lived on, then its rows, with the
// removal's guarantees: dispatch best-effort, and one transaction that purges the rows, puts every unconfirmed
// file in the outbox, settles the TPM's key binding, removes the VM and finishes the operation.
import { randomUUID } from 'node:crypto';
import type { BackupFile, Tpm, Vm, VmHostFile } from '../store/index.js';
import { FlowError, type FlowDeps } from './deps.js';
import { deleteOnHosts, planOnHosts, type HostReport } from './dispatch.js';
import { forgetDeleted, isConfirmed, outcomesOf, unconfirmed, type PendingFile } from './outbox.js';
import { refuseBusy } from './probe.js';
import { settleBinding } from './remove-tpm.js';
import { resolveVm } from './resolve.js';
import { planOnVms, runPlanned } from './run-planned.js';
import { OPERATION_KIND } from '../store/types.js';

export const DESTROY_VM = OPERATION_KIND.destroyVm;

export interface DestroyReport {
  readonly operationId: string;
  readonly vmUuid: string;
  readonly vmName: string;
  /** The VM's TPM, if it had one, and its key binding: 'detaching' while any of its state files is pending. */
  readonly tpm: { readonly tpmUuid: string; readonly binding: 'detached' | 'detaching' } | null;
  readonly hosts: readonly HostReport[];
  readonly commands: number;
  readonly pending: readonly PendingFile[];
}

interface Collected {
  readonly vm: Vm;
  readonly tpm: Tpm | null;
  readonly files: readonly VmHostFile[];
  readonly backups: readonly BackupFile[];
}

/**
 * Destroys the VM and all its files. `operationId` names the journal row: resume passes the one it carries on,
 * whose earlier steps are repeated safely (collect reads; a host delete of a file already gone answers `absent`).
 */
export async function destroyVm(
  deps: FlowDeps,
  vmRef: string,
  operationId: string = randomUUID(),
  options: { readonly force?: boolean } = {},
): Promise<DestroyReport> {
  const resolved = await resolveVm(deps.store, vmRef);
  return runPlanned(
    deps,
    () => planOnVms(deps, [resolved.uuid]),
    // The VM's states, read again under its keys: nothing changes them now.
    async (files) => {
      // Re-read in the queue: a flow that held it before us may have destroyed the VM.
      const vm = await deps.store.getVm(resolved.uuid);
      if (vm === null) throw new FlowError('not_found', `no VM ${vmRef}`);
      const resumed = (await deps.store.getOperation(operationId)) !== null;
      let down: ReadonlyMap<string, string> = new Map();
      if (!resumed) {
        // A running VM is not destroyed unless forced: its swtpm or QEMU holds the state.
        down = await refuseBusy(deps, files, options.force === true, () => vm.name);
        await deps.store.startOperation({
          id: operationId,
          kind: DESTROY_VM,
          subject: vm.uuid,
          step: 'collect',
          input: { vm: vm.uuid },
        });
      }
      const collected = await collect(deps, vm, files);
      await deps.store.setOperationStep(operationId, 'dispatch');
      const hosts = await deleteOnHosts(deps, collected.files, DESTROY_VM, down);
      return purge(deps, operationId, collected, hosts);
    },
  );
}

/**
 * `vm destroy --dry-run`: the report `destroyVm` would give were every deletion confirmed, with each file 'planned'
 * and nothing pending. It reads only: no journal row, no lease, no command to any host (not even the busy probe).
 */
export async function planDestroyVm(deps: FlowDeps, vmRef: string): Promise<DestroyPlan> {
  const vm = await resolveVm(deps.store, vmRef);
  const { tpm, files } = await collect(deps, vm, await deps.store.listFilesByVm(vm.uuid));
  const hosts = await planOnHosts(deps, files);
  return {
    dryRun: true,
    vmUuid: vm.uuid,
    vmName: vm.name,
    tpm: tpm === null ? null : { tpmUuid: tpm.uuid, binding: 'detached' },
    hosts,
    commands: hosts.reduce((n, h) => n + h.commands, 0),
  };
}

/** A destroy's report, as a dry run gives it: no operation, nothing pending. */
export type DestroyPlan = Omit<DestroyReport, 'operationId' | 'pending'> & { readonly dryRun: true };

async function collect(deps: FlowDeps, vm: Vm, files: readonly VmHostFile[]): Promise<Collected> {
  const [tpm, backups] = await Promise.all([deps.store.getTpmByVm(vm.uuid), deps.store.listBackupsByVm(vm.uuid)]);
  return { vm, tpm, files, backups };
}

/** Every row of the VM goes, and every file not confirmed gone joins the outbox, in one transaction. */
async function purge(
  deps: FlowDeps,
  operationId: string,
  { vm, tpm, files, backups }: Collected,
  hosts: readonly HostReport[],
): Promise<DestroyReport> {
  const { pending, rows } = unconfirmed(
    [{ files, tpmUuid: tpm?.uuid ?? null }],
    outcomesOf(hosts),
    deps.now() + deps.retryBaseMs,
  );
  const outcome = outcomesOf(hosts);
  return deps.store.transaction(async (tx) => {
    await tx.deleteFiles(files.map((f) => f.uuid));
    await forgetDeleted(
      tx,
      files.filter((f) => isConfirmed(outcome(f.hostUuid, f.path))),
    );
    // Every generation, not only the newest the collect step read (their row would cascade with the VM's anyway).
    if (backups.length > 0) await tx.deleteGenerations(vm.uuid);
    await tx.addPendingDeletions(rows);
    let tpmReport: DestroyReport['tpm'] = null;
    if (tpm !== null) {
      await tx.removeTpm(tpm.uuid);
      // Its row is gone: settling answers detached or detaching, never attached.
      const binding = await settleBinding(tx, tpm.uuid);
      tpmReport = { tpmUuid: tpm.uuid, binding: binding === 'detached' ? 'detached' : 'detaching' };
    }
    // Refused by the schema if any TPM or file row of the VM were left: nothing on a host is forgotten.
    await tx.removeVm(vm.uuid);
    const report: DestroyReport = {
      operationId,
      vmUuid: vm.uuid,
      vmName: vm.name,
      tpm: tpmReport,
      hosts,
      commands: hosts.reduce((n, h) => n + h.commands, 0),
      pending,
    };
    await tx.finishOperation(operationId, 'done', report);
    return report;
  });
}

// A host gone for good: what still names it (`host drain`), and its removal with every such row settled explicitly
// (`host remove`), each settled row in the report and the journal. Nothing here reaches the host: it is gone.
import { randomUUID } from 'node:crypto';
import type { FileType } from '@hostfiles/shared';
import type { Host, StoreReads, StoreTx } from '../store/index.js';
import { FlowError, type FlowDeps } from './deps.js';
import { resolveHost } from './inventory.js';
import { vmKey, wholeHost } from './lock-keys.js';
import { settleBinding } from './remove-tpm.js';
import { OPERATION_KIND } from '../store/types.js';

export const REMOVE_HOST = OPERATION_KIND.removeHost;

export interface HeldVm {
  readonly vmUuid: string;
  readonly vmName: string;
}

export interface HeldFile {
  readonly vmUuid: string;
  readonly vmName: string;
  readonly type: FileType;
  readonly path: string;
  readonly size: number;
  /** the controller holds a backup of this VM's state of this type: `vm move` and `restore` can put it elsewhere */
  readonly backup: boolean;
}

export interface HeldDeletion {
  readonly id: number;
  readonly vmUuid: string;
  /** the removed TPM whose key binding waits for this deletion */
  readonly tpmUuid: string | null;
  readonly type: FileType;
  readonly path: string;
  readonly attempts: number;
  readonly lastError: string | null;
}

/** Everything the inventory holds on a host: what `host remove` must settle before the host row can go. */
export interface HostHoldings {
  readonly hostUuid: string;
  readonly hostName: string;
  readonly state: Host['state'];
  readonly lastSeenAt: number | null;
  /** VMs whose current host it is */
  readonly vms: readonly HeldVm[];
  /** states recorded on it (of any VM) */
  readonly files: readonly HeldFile[];
  /** deletions not yet confirmed on it */
  readonly pending: readonly HeldDeletion[];
  /** paths hostfiles took charge of there (forgotten with the host) */
  readonly ownedPaths: readonly string[];
  /** the options `host remove` needs to settle them; empty: it removes the host as it is */
  readonly needs: readonly ('forget-records' | 'forget-pending')[];
}

export interface RemoveHostOptions {
  /** VMs living on the host become placed nowhere, and the states recorded on it are forgotten */
  readonly forgetRecords?: boolean;
  /** its pending deletions are forgotten: the operator states the files went with the host */
  readonly forgetPending?: boolean;
}

export interface HostRemoval extends HostHoldings {
  readonly operationId: string;
  /** the key bindings of removed TPMs that waited on a forgotten deletion, settled */
  readonly bindings: readonly { readonly tpmUuid: string; readonly binding: 'detached' | 'detaching' }[];
}

/**
 * Removes the host and settles what names it, in one transaction with its journal row. Refused (`conflict`, nothing
 * changed) while VMs, records or pending deletions name it and the option that settles them was not given. Runs with
 * the whole host and every VM on it held, so no flow on them runs meanwhile.
 */
export async function removeHost(
  deps: FlowDeps,
  ref: string,
  options: RemoveHostOptions = {},
  operationId: string = randomUUID(),
): Promise<HostRemoval> {
  const host = await resolveHost(deps, ref);
  const vms = await deps.store.listVms({ hostUuid: host.uuid });
  return deps.queue.run([wholeHost(host.uuid), ...vms.map((vm) => vmKey(vm.uuid))], () =>
    deps.store.transaction(async (tx) => {
      const holdings = await hostHoldings(tx, host);
      // A VM placed on the host since the keys were named is not held: settling it could race its own flow.
      const held = new Set(vms.map((vm) => vm.uuid));
      const unheld = holdings.vms.find((vm) => !held.has(vm.vmUuid));
      if (unheld !== undefined) {
        throw new FlowError('conflict', `VM ${unheld.vmName} was placed on host ${host.name} meanwhile: run it again`);
      }
      const missing = holdings.needs.filter((need) =>
        need === 'forget-records' ? options.forgetRecords !== true : options.forgetPending !== true,
      );
      if (missing.length > 0) throw refusal(holdings, missing);
      // Forgetting is for a host that is gone: one whose agent answered its last check still holds the files.
      const now = await tx.getHost(host.uuid);
      if (holdings.needs.length > 0 && now?.state === 'Connected') {
        throw new FlowError(
          'conflict',
          `host_in_use: host ${host.name} answered its last health check (Connected): a host that answers is not ` +
            'gone, and forgetting what names it would leave its files on it with nobody to clean them; nothing ' +
            'changed. Once it is gone, `hostfiles host check` marks it Disconnected',
        );
      }
      await tx.startOperation({
        id: operationId,
        kind: REMOVE_HOST,
        subject: host.uuid,
        step: 'settle',
        input: {
          host: host.uuid,
          forgetRecords: options.forgetRecords === true,
          forgetPending: options.forgetPending === true,
        },
      });
      const bindings = await settle(tx, holdings);
      await tx.removeHost(host.uuid);
      const report: HostRemoval = { operationId, ...holdings, bindings };
      await tx.finishOperation(operationId, 'done', report);
      return report;
    }),
  );
}

async function settle(tx: StoreTx, holdings: HostHoldings): Promise<HostRemoval['bindings']> {
  for (const vm of holdings.vms) await tx.setVmHost(vm.vmUuid, null);
  const files = await tx.listFilesByHost(holdings.hostUuid);
  await tx.deleteFiles(files.map((f) => f.uuid));
  await tx.deletePendingDeletions(holdings.pending.map((p) => p.id));
  // A removed TPM's binding waited for its state's deletion: with none left anywhere it is detached now.
  const tpms = [...new Set(holdings.pending.flatMap((p) => (p.tpmUuid === null ? [] : [p.tpmUuid])))];
  const bindings: HostRemoval['bindings'][number][] = [];
  for (const tpmUuid of tpms) {
    const binding = await settleBinding(tx, tpmUuid);
    if (binding !== 'attached') bindings.push({ tpmUuid, binding });
  }
  return bindings;
}

function refusal(holdings: HostHoldings, missing: readonly string[]): FlowError {
  const named = [
    holdings.vms.length > 0 ? `${holdings.vms.length} VM(s) living on it` : '',
    holdings.files.length > 0 ? `${holdings.files.length} state(s) recorded on it` : '',
    holdings.pending.length > 0 ? `${holdings.pending.length} deletion(s) pending on it` : '',
  ].filter((text) => text !== '');
  return new FlowError(
    'conflict',
    `host_in_use: host ${holdings.hostName} is still named by ${named.join(', ')}; nothing changed. ` +
      `\`hostfiles host drain ${holdings.hostName}\` lists them; ${missing.map((m) => `--${m}`).join(' and ')} ` +
      'settle(s) them when the host is gone for good',
  );
}

/** `host drain`: what names the host, and what removing it would settle. Reads only. */
export async function hostHoldings(store: StoreReads, host: Host): Promise<HostHoldings> {
  // One after the other: inside a transaction, its one connection answers one statement at a time anyway.
  const vms = await store.listVms({ hostUuid: host.uuid });
  const files = await store.listFilesByHost(host.uuid);
  const pending = await store.listPendingDeletions({ hostUuid: host.uuid });
  const owned = await store.listOwnedPaths(host.uuid);
  const vmUuids = [...new Set(files.map((f) => f.vmUuid))];
  const backups = new Set((await store.listBackupsByVms(vmUuids)).map((b) => `${b.vmUuid}\0${b.type}`));
  const names = new Map(vms.map((vm) => [vm.uuid, vm.name]));
  for (const uuid of vmUuids) {
    if (!names.has(uuid)) names.set(uuid, (await store.getVm(uuid))?.name ?? uuid);
  }
  const needs: HostHoldings['needs'][number][] = [];
  if (vms.length > 0 || files.length > 0) needs.push('forget-records');
  if (pending.length > 0) needs.push('forget-pending');
  return {
    hostUuid: host.uuid,
    hostName: host.name,
    state: host.state,
    lastSeenAt: host.lastSeenAt,
    vms: vms.map((vm) => ({ vmUuid: vm.uuid, vmName: vm.name })),
    files: files.map((f) => ({
      vmUuid: f.vmUuid,
      vmName: names.get(f.vmUuid) ?? f.vmUuid,
      type: f.type,
      path: f.path,
      size: f.size,
      backup: backups.has(`${f.vmUuid}\0${f.type}`),
    })),
    pending: pending.map((p) => ({
      id: p.id,
      vmUuid: p.vmUuid,
      tpmUuid: p.tpmUuid,
      type: p.type,
      path: p.path,
      attempts: p.attempts,
      lastError: p.lastError,
    })),
    ownedPaths: owned.map((o) => o.path),
    needs,
  };
}

// The audit of every VM's stored NVRAM: the newest copy sync took (its backup), read one VM at a time.
import type { StoreReads, Vm } from '../store/index.js';
import {
  AUDIT_STATES,
  auditErasedStore,
  auditVariableStore,
  unreadable,
  type AuditState,
  type StoreAudit,
} from './audit.js';
import { storedVolume, type StoredVolume } from './stored-bytes.js';

export interface VmAudit extends StoreAudit {
  readonly vmUuid: string;
  readonly vmName: string;
  readonly hostUuid: string | null;
  /** the copy audited: when it was stored (a backup), or for --host when the audit began (its reads go in batches),
   * and its path on the host when read; null when there is none */
  readonly nvram: {
    readonly sha256: string;
    readonly size: number;
    readonly at: number;
    readonly path: string | null;
  } | null;
}

export interface FleetAudit {
  readonly vms: readonly VmAudit[];
  readonly counts: Readonly<Record<AuditState, number>>;
  /** the audit's clock (ms since the epoch), by which a CA has expired or not */
  readonly at: number;
}

/**
 * Every VM, by name; one without stored NVRAM is `not_applicable` and says why. `now`: the audit's clock, read once,
 * which says whether a 2011 CA has expired.
 */
export async function auditStoredNvram(store: StoreReads, now: () => number): Promise<FleetAudit> {
  const at = now();
  const vms = await store.listVms();
  const backups = new Map(
    (await store.listBackupsByVms(vms.map((vm) => vm.uuid)))
      .filter((b) => b.type === 'NvRam')
      .map((b) => [b.vmUuid, b]),
  );
  const audits: VmAudit[] = [];
  // One at a time: each stored volume is inflated, audited and dropped before the next is read.
  for (const vm of [...vms].sort((a, b) => a.name.localeCompare(b.name))) {
    const backup = backups.get(vm.uuid);
    const row = { vmUuid: vm.uuid, vmName: vm.name, hostUuid: vm.hostUuid };
    if (backup === undefined) {
      audits.push({ ...row, nvram: null, ...notApplicable(noNvramReason(vm)) });
      continue;
    }
    const nvram = { sha256: backup.sha256, size: backup.size, at: backup.capturedAt, path: null };
    const [entry] = await store.listBackupEntries(backup.uuid);
    const volume = entry === undefined ? undefined : await storedVolume(entry);
    let audit: StoreAudit;
    if (volume === undefined) audit = unreadable('the stored NVRAM has no content');
    else audit = volume.ok ? auditVolume(volume.value, at) : unreadable(volume.error);
    audits.push({ ...row, nvram, ...audit });
  }
  return { vms: audits, counts: countStates(audits), at };
}

export function countStates(audits: readonly VmAudit[]): Record<AuditState, number> {
  const counts = Object.fromEntries(AUDIT_STATES.map((s) => [s, audits.filter((a) => a.state === s).length]));
  return counts as Record<AuditState, number>;
}

export const auditVolume = (volume: StoredVolume, now: number): StoreAudit =>
  volume.kind === 'erased' ? auditErasedStore(volume.size) : auditVariableStore(volume.bytes, now);

const noNvramReason = (vm: Vm): string =>
  vm.bootMode === 'Legacy' ? 'legacy boot: no NVRAM' : 'no stored NVRAM (sync the VM to store it)';

export const notApplicable = (reason: string): StoreAudit => ({
  state: 'not_applicable',
  reason,
  secureBoot: null,
  certificates: [],
  dbxEntries: null,
  missing: [],
});

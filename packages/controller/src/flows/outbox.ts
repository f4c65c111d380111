// What a dispatch left unconfirmed, turned into outbox rows: shared by removal, destroy and the retry pass.
import type { FileType } from '@hostfiles/shared';
import type { NewPendingDeletion, StoreTx, VmHostFile } from '../store/index.js';
import type { DeleteOutcome, HostReport } from './dispatch.js';
import { groupBy } from './group-by.js';

export interface PendingFile {
  readonly hostUuid: string;
  readonly type: FileType;
  readonly path: string;
  readonly vmUuid: string;
  readonly reason: string;
}

export type OutcomeLookup = (hostUuid: string, path: string) => DeleteOutcome | undefined;

/** The outcome of each (host, path) a dispatch reported. */
export function outcomesOf(hosts: readonly HostReport[]): OutcomeLookup {
  const outcomes = new Map(hosts.flatMap((h) => h.files.map((f) => [`${f.hostUuid}\0${f.path}`, f] as const)));
  return (hostUuid, path) => outcomes.get(`${hostUuid}\0${path}`);
}

export const isConfirmed = (outcome: DeleteOutcome | undefined): boolean =>
  outcome?.status === 'deleted' || outcome?.status === 'absent';

export const reasonOf = (outcome: DeleteOutcome | undefined): string =>
  outcome !== undefined && 'reason' in outcome ? outcome.reason : 'not sent';

/** Forgets the paths whose deletion was confirmed on the host, unless a state is recorded there again. */
export async function forgetDeleted(
  tx: StoreTx,
  deleted: readonly { readonly hostUuid: string; readonly path: string }[],
): Promise<void> {
  for (const [hostUuid, files] of groupBy(deleted, (d) => d.hostUuid)) {
    const paths = files.map((f) => f.path);
    const recorded = new Set((await tx.listFilesByHost(hostUuid)).map((f) => f.path));
    await tx.removeOwnedPaths(
      hostUuid,
      paths.filter((path) => !recorded.has(path)),
    );
  }
}

export interface OutboxEntry {
  readonly files: readonly VmHostFile[];
  /** the TPM whose key binding waits for its state files, if any */
  readonly tpmUuid: string | null;
}

/** Every file not confirmed gone, as a report line and as an outbox row due after the first backoff. */
export function unconfirmed(
  entries: readonly OutboxEntry[],
  outcome: OutcomeLookup,
  nextAttemptAt: number,
): { pending: PendingFile[]; rows: NewPendingDeletion[] } {
  const pending: PendingFile[] = [];
  const rows: NewPendingDeletion[] = [];
  for (const { files, tpmUuid } of entries) {
    for (const file of files) {
      const result = outcome(file.hostUuid, file.path);
      if (isConfirmed(result)) continue;
      const reason = reasonOf(result);
      pending.push({ hostUuid: file.hostUuid, type: file.type, path: file.path, vmUuid: file.vmUuid, reason });
      rows.push({
        hostUuid: file.hostUuid,
        type: file.type,
        path: file.path,
        vmUuid: file.vmUuid,
        // NVRAM belongs to the firmware, not the TPM: only TPM state holds the key binding back.
        tpmUuid: file.type === 'TpmState' ? tpmUuid : null,
        nextAttemptAt,
        lastError: reason,
      });
    }
  }
  return { pending, rows };
}

// The row shape of pending_deletions, shared by the outbox and by file upserts (which cancel deletions).
import type { FileType, PendingDeletion } from './types.js';

export interface PendingRow {
  id: number;
  host_uuid: string;
  type: FileType;
  path: string;
  vm_uuid: string;
  vm_name: string | null;
  tpm_uuid: string | null;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  expect_sha256: string | null;
  created_at: number;
}

export const PENDING_COLUMNS =
  'id, host_uuid, type, path, vm_uuid, vm_name, tpm_uuid, attempts, next_attempt_at, last_error, expect_sha256, created_at';

export const toPending = (r: PendingRow): PendingDeletion => ({
  id: r.id,
  hostUuid: r.host_uuid,
  type: r.type,
  path: r.path,
  vmUuid: r.vm_uuid,
  vmName: r.vm_name,
  tpmUuid: r.tpm_uuid,
  attempts: r.attempts,
  nextAttemptAt: r.next_attempt_at,
  lastError: r.last_error,
  expectSha256: r.expect_sha256,
  createdAt: r.created_at,
});

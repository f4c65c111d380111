export { FlowError, isFlowError, type FlowDeps, type ProgressEvent } from './deps.js';
export { createVmQueue, type VmQueue } from './vm-queue.js';
export { deleteOnHosts, type HostReport } from './dispatch.js';
export {
  addHost,
  addTpm,
  addVm,
  checkHost,
  resolveHost,
  writeFile,
  type NewVmInput,
  type WriteFileInput,
} from './inventory.js';
export { removeTpms, REMOVE_TPM, type RemovalReport, type VmRemoval, type PendingFile } from './remove-tpm.js';
export { retryPendingDeletions, backoff, type RetryReport } from './retry.js';
export { resolveVm, needsNvram } from './resolve.js';
export { createRetryWorker, type RetryWorker, type RetryWorkerOptions } from './retry-worker.js';
export { destroyVm, DESTROY_VM, type DestroyReport } from './destroy-vm.js';
export { resumeOperations, settleDetachingBindings, type ResumeReport, type SkippedVm } from './resume.js';
export {
  syncVm,
  resumeSync,
  SYNC_VM,
  type SyncReport,
  type SyncedFile,
  type SyncOutcome,
  type SyncBackup,
} from './sync.js';
export {
  restoreVm,
  resumeRestore,
  RESTORE_VM,
  type RestoreOptions,
  type RestoreReport,
  type RestoredFile,
  type RestoreOutcome,
} from './restore.js';
export {
  reconcileHost,
  resumeReconcile,
  RECONCILE_HOST,
  ORPHAN_VM_UUID,
  type ReconcileOptions,
  type ReconcileReport,
  type MissingFile,
} from './reconcile.js';

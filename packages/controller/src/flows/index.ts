export {
  FLOW_ERROR_CODES,
  FlowError,
  isFlowError,
  type FlowDeps,
  type FlowErrorCode,
  type HostTransition,
  type ProgressEvent,
} from './deps.js';
export { createVmQueue, type LockKey, type LockMode, type VmQueue, type VmQueueOptions } from './vm-queue.js';
export { deleteOnHosts, planOnHosts, type HostReport, type FileOutcome } from './dispatch.js';
export {
  addHost,
  checkHost,
  repinHost,
  REPIN_HOST,
  setHostUrl,
  type HostHealth,
  type NewHostInput,
  type RepinReport,
} from './hosts.js';
export {
  addTpm,
  addVm,
  moveVm,
  resolveHost,
  writeFile,
  WRITE_FILE,
  type MoveReport,
  type NewVmInput,
  type WriteFileInput,
  type WriteReport,
  type WrittenFile,
} from './inventory.js';
export {
  planRemoveTpms,
  removeTpms,
  REMOVE_TPM,
  type RemovalPlan,
  type RemovalReport,
  type RemoveOptions,
  type VmRemoval,
  type PendingFile,
} from './remove-tpm.js';
export { adoptVm, ADOPT_VM, libvirtPaths, type AdoptOptions, type AdoptReport, type AdoptedState } from './adopt.js';
export { GUARD_DELAY_MS, type PlacedFile, type PlaceOutcome } from './place.js';
export { dirState, fileState, MAX_STATE_BYTES, type State } from './state.js';
export { probeStates, type BusyState, type Probe } from './probe.js';
export { retryPendingDeletions, backoff, type RetryReport } from './retry.js';
export { resolveVm, needsNvram } from './resolve.js';
export { createRetryWorker, type RetryWorker, type RetryWorkerOptions, type Timers } from './retry-worker.js';
export { destroyVm, planDestroyVm, DESTROY_VM, type DestroyPlan, type DestroyReport } from './destroy-vm.js';
export { resumeOperations, settleDetachingBindings, type ResumeReport, type SkippedVm } from './resume.js';
export {
  readOnHost,
  syncVm,
  resumeSync,
  SYNC_VM,
  type SyncReport,
  type SyncedFile,
  type SyncOutcome,
  type SyncBackup,
} from './sync.js';
export { recoverVm, resumeRecover, RECOVER_VM, type RecoverOptions, type RecoverReport } from './recover.js';
export {
  syncFleet,
  resumeFleetSync,
  SYNC_FLEET,
  FLEET_READ_BYTES,
  FLEET_LIST_BYTES,
  FLEET_LIST_CONCURRENCY,
  type FleetSyncReport,
  type FleetSyncHost,
  type ReadReason,
  type FleetReadState,
  type FleetMissingState,
} from './fleet-sync.js';
export {
  restoreVm,
  resumeRestore,
  RESTORE_VM,
  type RestoreOptions,
  type RestoreReport,
  type RestoredFile,
} from './restore.js';
export {
  planReconcileHost,
  reconcileHost,
  type ReconcilePlan,
  resumeReconcile,
  RECONCILE_HOST,
  ORPHAN_VM_UUID,
  type ReconcileOptions,
  type ReconcileReport,
  type MissingFile,
  type ModifiedFile,
} from './reconcile.js';
export {
  CLOCK_MARGIN_MS,
  createLeasedQueue,
  registerController,
  type ControllerRegistration,
  type LeaseSettings,
} from './controller-lease.js';
export { createFleetShare } from './fleet-share.js';
export {
  hostHoldings,
  removeHost,
  REMOVE_HOST,
  type HostHoldings,
  type HostRemoval,
  type RemoveHostOptions,
} from './remove-host.js';

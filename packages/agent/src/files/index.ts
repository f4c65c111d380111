// All file-system work of the agent.
export { ANSWER_FULL_MESSAGE } from './encode-file.js';
export { createFileStore, type FileStoreOptions } from './file-store.js';
export { FileStoreError, isFileStoreError } from './file-store-error.js';
export { readProcLocks, type ReadLockedInodes } from './locks.js';
export { DEFAULT_DIR_MODE, DEFAULT_FILE_MODE } from './ownership.js';
export { makeMissingRoots, ROOT_MODES, type RootOutcome } from './make-roots.js';
export { rootDirProblem } from './root-dir.js';
export { TEMP_PREFIX } from './temp-name.js';
export { STORE_EVENTS } from './types.js';
export { listBudget, MAX_LISTED_BYTES, type ListBudget } from './units.js';
export type {
  FileRoots,
  FileStore,
  OpFailure,
  OpTiming,
  Ownerships,
  ReadState,
  RecoveryReport,
  RootOwnership,
  StateEntry,
  StatState,
  StoreEvent,
} from './types.js';

// All file-system work of the agent.
export { createFileStore } from './file-store.js';
export { FileStoreError, isFileStoreError } from './file-store-error.js';
export { TEMP_PREFIX } from './temp-name.js';
export type { FileOwner, FileRoots, FileStore, OpFailure } from './types.js';

// What every changing op of one root needs besides its path.
import type { ReadLockedInodes } from './locks.js';
import type { RootOwnership } from './types.js';

export interface OpContext {
  readonly ownership: RootOwnership;
  readonly readLocks: ReadLockedInodes;
}

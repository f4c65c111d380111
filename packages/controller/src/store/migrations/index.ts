// Every migration, in order; a new one is appended here and never edited once released.
import { MIGRATION_001 } from './001-initial.js';
import { MIGRATION_002 } from './002-real-hosts.js';
import { MIGRATION_003 } from './003-pinned-certificates.js';
import { MIGRATION_004 } from './004-controllers.js';
import { MIGRATION_005 } from './005-generations.js';
import { MIGRATION_006 } from './006-settings.js';
import { MIGRATION_007 } from './007-pending-vm-name.js';
import type { Migration } from './migration.js';

export type { Migration };
export const MIGRATIONS: readonly Migration[] = [
  MIGRATION_001,
  MIGRATION_002,
  MIGRATION_003,
  MIGRATION_004,
  MIGRATION_005,
  MIGRATION_006,
  MIGRATION_007,
];

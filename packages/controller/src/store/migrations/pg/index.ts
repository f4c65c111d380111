// Every PostgreSQL migration, in order; its own sequence, beside SQLite's. A new one is appended here and never
// edited once released; a change of schema is written for both engines.
import type { Migration } from '../migration.js';
import { PG_MIGRATION_001 } from './001-initial.js';
import { PG_MIGRATION_002 } from './002-controllers.js';
import { PG_MIGRATION_003 } from './003-generations.js';
import { PG_MIGRATION_004 } from './004-settings.js';
import { PG_MIGRATION_005 } from './005-pending-vm-name.js';

export const PG_MIGRATIONS: readonly Migration[] = [
  PG_MIGRATION_001,
  PG_MIGRATION_002,
  PG_MIGRATION_003,
  PG_MIGRATION_004,
  PG_MIGRATION_005,
];

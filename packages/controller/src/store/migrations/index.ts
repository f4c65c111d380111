// Every migration, in order; a new one is appended here and never edited once released.
import { MIGRATION_001 } from './001-initial.js';
import type { Migration } from './migration.js';

export type { Migration };
export const MIGRATIONS: readonly Migration[] = [MIGRATION_001];

// A pending deletion keeps the name its VM had when it was scheduled: as SQLite's migration 7
// (../007-pending-vm-name.ts).
import type { Migration } from '../migration.js';

export const PG_MIGRATION_005: Migration = {
  version: 5,
  name: 'pending-vm-name',
  sql: `
ALTER TABLE pending_deletions ADD COLUMN vm_name text COLLATE "C";
UPDATE pending_deletions SET vm_name = (SELECT name FROM vms WHERE vms.uuid = pending_deletions.vm_uuid);
`,
};

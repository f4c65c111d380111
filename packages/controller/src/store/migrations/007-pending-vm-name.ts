// A pending deletion keeps the name its VM had when it was scheduled: `vm destroy` removes the VM's row in the same
// transaction that puts its files in the outbox, and until this column a destroyed VM's deletions showed only its
// uuid. Rows already pending take the name of their VM where it still exists.
import type { Migration } from './migration.js';

export const MIGRATION_007: Migration = {
  version: 7,
  name: 'pending-vm-name',
  sql: `
ALTER TABLE pending_deletions ADD COLUMN vm_name TEXT;
UPDATE pending_deletions SET vm_name = (SELECT name FROM vms WHERE vms.uuid = pending_deletions.vm_uuid);
`,
};

// Generations and fencing: as SQLite's migration 5 (../005-generations.ts). PostgreSQL can alter the table in place.
import type { Migration } from '../migration.js';

const TEXT = 'text COLLATE "C"';

export const PG_MIGRATION_003: Migration = {
  version: 3,
  name: 'generations',
  sql: `
ALTER TABLE vm_host_backup_files DROP CONSTRAINT vm_host_backup_files_vm_uuid_type_key;
ALTER TABLE vm_host_backup_files ADD COLUMN generation bigint NOT NULL DEFAULT 1 CHECK (generation >= 1);
ALTER TABLE vm_host_backup_files ALTER COLUMN generation DROP DEFAULT;
ALTER TABLE vm_host_backup_files ADD COLUMN source ${TEXT} NOT NULL DEFAULT 'migrated'
  CHECK (source IN ('sync', 'adopt', 'write', 'migrated'));
ALTER TABLE vm_host_backup_files ALTER COLUMN source DROP DEFAULT;
ALTER TABLE vm_host_backup_files ADD COLUMN host_uuid ${TEXT} REFERENCES hosts (uuid) ON DELETE SET NULL;
ALTER TABLE vm_host_backup_files RENAME COLUMN updated_at TO captured_at;
ALTER TABLE vm_host_backup_files ADD CONSTRAINT vm_host_backup_files_generation UNIQUE (vm_uuid, type, generation);
CREATE INDEX vm_host_backup_files_by_host ON vm_host_backup_files (host_uuid);

CREATE TABLE vm_generation_counters (
  vm_uuid         ${TEXT} NOT NULL REFERENCES vms (uuid) ON DELETE CASCADE,
  type            ${TEXT} NOT NULL CHECK (type IN ('TpmState', 'NvRam')),
  last_generation bigint  NOT NULL CHECK (last_generation >= 1),
  PRIMARY KEY (vm_uuid, type)
);
INSERT INTO vm_generation_counters (vm_uuid, type, last_generation)
  SELECT vm_uuid, type, 1 FROM vm_host_backup_files;

ALTER TABLE vms ADD COLUMN epoch bigint NOT NULL DEFAULT 0 CHECK (epoch >= 0);
`,
};

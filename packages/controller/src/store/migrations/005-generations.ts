// Generations and fencing (docs/DESIGN.md, "Generations and fencing"). The one backup per (vm, type) becomes a
// numbered history: every capture (sync, adopt, write) is a generation with its number, digest, size, the host it
// came from and when; the last N are kept. Numbers come from a counter per (vm, type) that outlives the generations
// (a TPM removed and added again numbers on), so a number is never reused while the VM exists. And each VM's
// ownership by its host carries an epoch that rises on every move, restore and recover: a capture is recorded only
// from the VM's current host at the epoch its flow read.
// The backup tables are rebuilt (SQLite cannot drop a UNIQUE key): both renamed away first, the entries before the
// files, so that the old entries' foreign key follows the old files and the new tables reference only each other.
import type { Migration } from './migration.js';

const SHA256_HEX = `CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*')`;
const STATE_KIND = `CHECK (kind IN ('file', 'dir'))`;
const FILE_TYPE = `CHECK (type IN ('TpmState', 'NvRam'))`;

export const MIGRATION_005: Migration = {
  version: 5,
  name: 'generations',
  sql: `
ALTER TABLE vm_host_backup_entries RENAME TO vm_host_backup_entries_004;
ALTER TABLE vm_host_backup_files RENAME TO vm_host_backup_files_004;
CREATE TABLE vm_host_backup_files (
  uuid        TEXT    NOT NULL PRIMARY KEY,
  vm_uuid     TEXT    NOT NULL REFERENCES vms (uuid) ON DELETE CASCADE,
  type        TEXT    NOT NULL ${FILE_TYPE},
  generation  INTEGER NOT NULL CHECK (generation >= 1),
  kind        TEXT    NOT NULL ${STATE_KIND},
  sha256      TEXT    NOT NULL ${SHA256_HEX},
  size        INTEGER NOT NULL CHECK (size >= 0),
  -- what captured it; 'migrated': the one backup a database had before generations
  source      TEXT    NOT NULL CHECK (source IN ('sync', 'adopt', 'write', 'migrated')),
  -- the host it was read from or written to; a host removed leaves its generations without one
  host_uuid   TEXT    REFERENCES hosts (uuid) ON DELETE SET NULL,
  captured_at INTEGER NOT NULL,
  UNIQUE (vm_uuid, type, generation)
) STRICT;
CREATE INDEX vm_host_backup_files_by_host ON vm_host_backup_files (host_uuid);
CREATE TABLE vm_host_backup_entries (
  backup_uuid TEXT    NOT NULL REFERENCES vm_host_backup_files (uuid) ON DELETE CASCADE,
  path        TEXT    NOT NULL CHECK (substr(path, 1, 1) <> '/'),
  content     BLOB    NOT NULL,
  encoding    TEXT    NOT NULL CHECK (encoding IN ('identity', 'gzip')),
  sha256      TEXT    NOT NULL ${SHA256_HEX},
  size        INTEGER NOT NULL CHECK (size >= 0),
  PRIMARY KEY (backup_uuid, path)
) STRICT;
-- The last generation number given per (vm, type): never lowered, so never reused.
CREATE TABLE vm_generation_counters (
  vm_uuid         TEXT    NOT NULL REFERENCES vms (uuid) ON DELETE CASCADE,
  type            TEXT    NOT NULL ${FILE_TYPE},
  last_generation INTEGER NOT NULL CHECK (last_generation >= 1),
  PRIMARY KEY (vm_uuid, type)
) STRICT;
INSERT INTO vm_host_backup_files (uuid, vm_uuid, type, generation, kind, sha256, size, source, host_uuid, captured_at)
  SELECT uuid, vm_uuid, type, 1, kind, sha256, size, 'migrated', NULL, updated_at FROM vm_host_backup_files_004;
INSERT INTO vm_host_backup_entries (backup_uuid, path, content, encoding, sha256, size)
  SELECT backup_uuid, path, content, encoding, sha256, size FROM vm_host_backup_entries_004;
INSERT INTO vm_generation_counters (vm_uuid, type, last_generation)
  SELECT vm_uuid, type, 1 FROM vm_host_backup_files_004;
DROP TABLE vm_host_backup_entries_004;
DROP TABLE vm_host_backup_files_004;

-- The fencing epoch of the VM's ownership by its host: rises on every move, restore and recover.
ALTER TABLE vms ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0 CHECK (epoch >= 0);
`,
};

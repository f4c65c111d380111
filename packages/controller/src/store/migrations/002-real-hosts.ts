// Real hosts: a state is a file or a directory (libvirt's `<uuid>/tpm2/…`), backups hold every file of a state,
// compressed; pending deletions may be conditional; and a ledger of the paths hostfiles is answerable for.
// The backup table is rebuilt (SQLite cannot drop a NOT NULL column): the old one is renamed away first, so that
// dropping it at the end cascades into nothing; nothing references it.
import type { Migration } from './migration.js';

const SHA256_HEX = `CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*')`;
const STATE_KIND = `CHECK (kind IN ('file', 'dir'))`;

export const MIGRATION_002: Migration = {
  version: 2,
  name: 'real-hosts',
  sql: `
-- What a recorded path is on its host: one regular file (NVRAM), or a directory state (a vTPM's <uuid>/).
ALTER TABLE vm_host_files ADD COLUMN kind TEXT NOT NULL DEFAULT 'file' ${STATE_KIND};

ALTER TABLE vm_host_backup_files RENAME TO vm_host_backup_files_001;
CREATE TABLE vm_host_backup_files (
  uuid       TEXT    NOT NULL PRIMARY KEY,
  vm_uuid    TEXT    NOT NULL REFERENCES vms (uuid) ON DELETE CASCADE,
  type       TEXT    NOT NULL CHECK (type IN ('TpmState', 'NvRam')),
  kind       TEXT    NOT NULL ${STATE_KIND},
  -- a file's sha256, or a directory's state digest (stateDigest in shared)
  sha256     TEXT    NOT NULL ${SHA256_HEX},
  -- the bytes of the state: a file's size, or the sum of a directory's files
  size       INTEGER NOT NULL CHECK (size >= 0),
  updated_at INTEGER NOT NULL,
  UNIQUE (vm_uuid, type)
) STRICT;
-- Each file of a backed-up state; a file state has one entry, at path ''. content is stored as it travels:
-- gzip when that is smaller (a 64 MiB AAVMF store is a few KiB), so a restore sends it without inflating it.
CREATE TABLE vm_host_backup_entries (
  backup_uuid TEXT    NOT NULL REFERENCES vm_host_backup_files (uuid) ON DELETE CASCADE,
  path        TEXT    NOT NULL CHECK (substr(path, 1, 1) <> '/'),
  content     BLOB    NOT NULL,
  encoding    TEXT    NOT NULL CHECK (encoding IN ('identity', 'gzip')),
  sha256      TEXT    NOT NULL ${SHA256_HEX},
  size        INTEGER NOT NULL CHECK (size >= 0),
  PRIMARY KEY (backup_uuid, path)
) STRICT;
INSERT INTO vm_host_backup_files (uuid, vm_uuid, type, kind, sha256, size, updated_at)
  SELECT uuid, vm_uuid, type, 'file', sha256, length(content), updated_at FROM vm_host_backup_files_001;
INSERT INTO vm_host_backup_entries (backup_uuid, path, content, encoding, sha256, size)
  SELECT uuid, '', content, 'identity', sha256, length(content) FROM vm_host_backup_files_001;
DROP TABLE vm_host_backup_files_001;

-- A conditional deletion: only while the path still holds this digest (a write whose outcome is unknown, an orphan
-- as reconcile saw it). Anything else found there is not ours to delete: the row is dropped, never forced.
ALTER TABLE pending_deletions ADD COLUMN expect_sha256 TEXT CHECK (expect_sha256 IS NULL OR (length(expect_sha256) = 64 AND expect_sha256 NOT GLOB '*[^0-9a-f]*'));

-- Every (host, path) hostfiles has put state at or taken charge of (written, restored, adopted), until its deletion
-- is confirmed. reconcile tells hostfiles' own leftovers (here, but in no row and no pending deletion) from state it
-- never knew (libvirt's, an operator's), which it never deletes unless told to. A host removed forgets its paths.
CREATE TABLE owned_paths (
  host_uuid  TEXT    NOT NULL REFERENCES hosts (uuid) ON DELETE CASCADE,
  path       TEXT    NOT NULL CHECK (substr(path, 1, 1) = '/'),
  type       TEXT    NOT NULL CHECK (type IN ('TpmState', 'NvRam')),
  vm_uuid    TEXT    NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (host_uuid, path)
) STRICT;
INSERT OR IGNORE INTO owned_paths (host_uuid, path, type, vm_uuid, created_at)
  SELECT host_uuid, path, type, vm_uuid, last_sync_at FROM vm_host_files;
INSERT OR IGNORE INTO owned_paths (host_uuid, path, type, vm_uuid, created_at)
  SELECT host_uuid, path, type, vm_uuid, created_at FROM pending_deletions;
`,
};

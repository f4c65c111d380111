// The first schema. Constraints live here, not only in code: STRICT tables (column types enforced), NOT NULL,
// CHECK on every enum, UNIQUE keys, and foreign keys whose ON DELETE is chosen per edge:
// - RESTRICT wherever deleting a parent would silently forget a file on a host (a VM's or host's file rows,
//   a host's pending deletions, a VM's TPM, a host's VMs): the flow must purge those rows first, through the
//   outbox, or the database refuses.
// - CASCADE only for backups: a controller-side copy has nothing on any host, so it may go with its VM.
// - No foreign key at all from key_bindings (the binding outlives its TPM row while the TPM's files are pending)
//   nor from pending_deletions.vm_uuid / tpm_uuid (the VM and TPM may be gone before their files are).
import type { Migration } from './migration.js';

const FILE_TYPE = `CHECK (type IN ('TpmState', 'NvRam'))`;
const ABSOLUTE_PATH = `CHECK (substr(path, 1, 1) = '/')`;
const SHA256_HEX = `CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*')`;

export const MIGRATION_001: Migration = {
  version: 1,
  name: 'initial',
  sql: `
CREATE TABLE hosts (
  uuid         TEXT    NOT NULL PRIMARY KEY,
  name         TEXT    NOT NULL UNIQUE CHECK (name <> ''),
  url          TEXT    NOT NULL,
  public_key   TEXT    NOT NULL,
  key_id       TEXT    NOT NULL,
  state        TEXT    NOT NULL CHECK (state IN ('Connected', 'Disconnected')),
  last_seen_at INTEGER,
  created_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE vms (
  uuid        TEXT    NOT NULL PRIMARY KEY,
  name        TEXT    NOT NULL UNIQUE CHECK (name <> ''),
  host_uuid   TEXT    REFERENCES hosts (uuid) ON DELETE RESTRICT,
  boot_mode   TEXT    NOT NULL CHECK (boot_mode IN ('Legacy', 'UEFI')),
  secure_boot INTEGER NOT NULL CHECK (secure_boot IN (0, 1)),
  created_at  INTEGER NOT NULL,
  -- secure boot is a UEFI feature
  CHECK (secure_boot = 0 OR boot_mode = 'UEFI')
) STRICT;
CREATE INDEX vms_by_host ON vms (host_uuid);

CREATE TABLE tpms (
  uuid       TEXT    NOT NULL PRIMARY KEY,
  vm_uuid    TEXT    NOT NULL UNIQUE REFERENCES vms (uuid) ON DELETE RESTRICT,
  created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE key_bindings (
  tpm_uuid     TEXT    NOT NULL PRIMARY KEY,
  vm_uuid      TEXT    NOT NULL,
  key_provider TEXT    NOT NULL CHECK (key_provider <> ''),
  state        TEXT    NOT NULL CHECK (state IN ('attached', 'detaching')),
  created_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE vm_host_files (
  uuid         TEXT    NOT NULL PRIMARY KEY,
  vm_uuid      TEXT    NOT NULL REFERENCES vms (uuid) ON DELETE RESTRICT,
  host_uuid    TEXT    NOT NULL REFERENCES hosts (uuid) ON DELETE RESTRICT,
  type         TEXT    NOT NULL ${FILE_TYPE},
  path         TEXT    NOT NULL ${ABSOLUTE_PATH},
  sha256       TEXT    NOT NULL ${SHA256_HEX},
  size         INTEGER NOT NULL CHECK (size >= 0),
  last_sync_at INTEGER NOT NULL,
  UNIQUE (vm_uuid, host_uuid, type), -- also the index of "files by vm"
  UNIQUE (host_uuid, path)           -- also the index of "files by host"
) STRICT;

CREATE TABLE vm_host_backup_files (
  uuid       TEXT    NOT NULL PRIMARY KEY,
  vm_uuid    TEXT    NOT NULL REFERENCES vms (uuid) ON DELETE CASCADE,
  type       TEXT    NOT NULL ${FILE_TYPE},
  content    BLOB    NOT NULL,
  sha256     TEXT    NOT NULL ${SHA256_HEX},
  updated_at INTEGER NOT NULL,
  UNIQUE (vm_uuid, type)
) STRICT;

CREATE TABLE pending_deletions (
  -- AUTOINCREMENT: an id is never reused, so a stale retry cannot name a newer row
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  host_uuid       TEXT    NOT NULL REFERENCES hosts (uuid) ON DELETE RESTRICT,
  type            TEXT    NOT NULL ${FILE_TYPE},
  path            TEXT    NOT NULL ${ABSOLUTE_PATH},
  vm_uuid         TEXT    NOT NULL,
  tpm_uuid        TEXT,
  attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_attempt_at INTEGER NOT NULL,
  last_error      TEXT,
  created_at      INTEGER NOT NULL,
  UNIQUE (host_uuid, path)
) STRICT;
CREATE INDEX pending_deletions_due ON pending_deletions (next_attempt_at);
CREATE INDEX pending_deletions_host_due ON pending_deletions (host_uuid, next_attempt_at);
CREATE INDEX pending_deletions_by_tpm ON pending_deletions (tpm_uuid) WHERE tpm_uuid IS NOT NULL;
CREATE INDEX pending_deletions_by_vm ON pending_deletions (vm_uuid);

CREATE TABLE operations (
  id         TEXT    NOT NULL PRIMARY KEY,
  kind       TEXT    NOT NULL,
  subject    TEXT    NOT NULL,
  step       TEXT    NOT NULL,
  state      TEXT    NOT NULL CHECK (state IN ('running', 'done', 'failed')),
  input      TEXT    NOT NULL CHECK (json_valid(input)),
  report     TEXT    CHECK (report IS NULL OR json_valid(report)),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX operations_unfinished ON operations (created_at) WHERE state = 'running';
`,
};

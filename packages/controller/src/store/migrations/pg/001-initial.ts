// The PostgreSQL schema, equal in rules to SQLite's migrations 1–3 (see ../001-initial.ts for why each foreign key
// is RESTRICT, CASCADE or absent). What differs is only how PostgreSQL says it:
// - every text column sorts by bytes (COLLATE "C"), as SQLite's BINARY does, so lists come in the same order;
// - times, sizes and ids are bigint; content is bytea; input and report are json (checked on the way in, stored as
//   text, returned as text);
// - an outbox id is an identity column, never reused (SQLite's AUTOINCREMENT);
// - a digest is checked by a regular expression instead of GLOB.
import type { Migration } from '../migration.js';

const TEXT = 'text COLLATE "C"';
const FILE_TYPE = `CHECK (type IN ('TpmState', 'NvRam'))`;
const STATE_KIND = `CHECK (kind IN ('file', 'dir'))`;
const ABSOLUTE_PATH = `CHECK (substr(path, 1, 1) = '/')`;
const HEX64 = (column: string): string => `${column} ~ '^[0-9a-f]{64}$'`;

export const PG_MIGRATION_001: Migration = {
  version: 1,
  name: 'initial',
  sql: `
CREATE TABLE hosts (
  uuid         ${TEXT} NOT NULL PRIMARY KEY,
  name         ${TEXT} NOT NULL UNIQUE CHECK (name <> ''),
  url          ${TEXT} NOT NULL,
  public_key   ${TEXT} NOT NULL,
  key_id       ${TEXT} NOT NULL,
  state        ${TEXT} NOT NULL CHECK (state IN ('Connected', 'Disconnected')),
  last_seen_at bigint,
  created_at   bigint  NOT NULL,
  certificate  ${TEXT} CHECK (certificate IS NULL OR substr(certificate, 1, 27) = '-----BEGIN CERTIFICATE-----')
);

CREATE TABLE vms (
  uuid        ${TEXT} NOT NULL PRIMARY KEY,
  name        ${TEXT} NOT NULL UNIQUE CHECK (name <> ''),
  host_uuid   ${TEXT} REFERENCES hosts (uuid) ON DELETE RESTRICT,
  boot_mode   ${TEXT} NOT NULL CHECK (boot_mode IN ('Legacy', 'UEFI')),
  secure_boot integer NOT NULL CHECK (secure_boot IN (0, 1)),
  created_at  bigint  NOT NULL,
  CHECK (secure_boot = 0 OR boot_mode = 'UEFI')
);
CREATE INDEX vms_by_host ON vms (host_uuid);

CREATE TABLE tpms (
  uuid       ${TEXT} NOT NULL PRIMARY KEY,
  vm_uuid    ${TEXT} NOT NULL UNIQUE REFERENCES vms (uuid) ON DELETE RESTRICT,
  created_at bigint  NOT NULL
);

CREATE TABLE key_bindings (
  tpm_uuid     ${TEXT} NOT NULL PRIMARY KEY,
  vm_uuid      ${TEXT} NOT NULL,
  key_provider ${TEXT} NOT NULL CHECK (key_provider <> ''),
  state        ${TEXT} NOT NULL CHECK (state IN ('attached', 'detaching')),
  created_at   bigint  NOT NULL
);

CREATE TABLE vm_host_files (
  uuid         ${TEXT} NOT NULL PRIMARY KEY,
  vm_uuid      ${TEXT} NOT NULL REFERENCES vms (uuid) ON DELETE RESTRICT,
  host_uuid    ${TEXT} NOT NULL REFERENCES hosts (uuid) ON DELETE RESTRICT,
  type         ${TEXT} NOT NULL ${FILE_TYPE},
  path         ${TEXT} NOT NULL ${ABSOLUTE_PATH},
  sha256       ${TEXT} NOT NULL CHECK (${HEX64('sha256')}),
  size         bigint  NOT NULL CHECK (size >= 0),
  last_sync_at bigint  NOT NULL,
  kind         ${TEXT} NOT NULL DEFAULT 'file' ${STATE_KIND},
  CONSTRAINT vm_host_files_vm_host_type UNIQUE (vm_uuid, host_uuid, type),
  CONSTRAINT vm_host_files_host_path UNIQUE (host_uuid, path)
);

CREATE TABLE vm_host_backup_files (
  uuid       ${TEXT} NOT NULL PRIMARY KEY,
  vm_uuid    ${TEXT} NOT NULL REFERENCES vms (uuid) ON DELETE CASCADE,
  type       ${TEXT} NOT NULL ${FILE_TYPE},
  kind       ${TEXT} NOT NULL ${STATE_KIND},
  sha256     ${TEXT} NOT NULL CHECK (${HEX64('sha256')}),
  size       bigint  NOT NULL CHECK (size >= 0),
  updated_at bigint  NOT NULL,
  UNIQUE (vm_uuid, type)
);

CREATE TABLE vm_host_backup_entries (
  backup_uuid ${TEXT} NOT NULL REFERENCES vm_host_backup_files (uuid) ON DELETE CASCADE,
  path        ${TEXT} NOT NULL CHECK (substr(path, 1, 1) <> '/'),
  content     bytea   NOT NULL,
  encoding    ${TEXT} NOT NULL CHECK (encoding IN ('identity', 'gzip')),
  sha256      ${TEXT} NOT NULL CHECK (${HEX64('sha256')}),
  size        bigint  NOT NULL CHECK (size >= 0),
  PRIMARY KEY (backup_uuid, path)
);

CREATE TABLE pending_deletions (
  id              bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  host_uuid       ${TEXT} NOT NULL REFERENCES hosts (uuid) ON DELETE RESTRICT,
  type            ${TEXT} NOT NULL ${FILE_TYPE},
  path            ${TEXT} NOT NULL ${ABSOLUTE_PATH},
  vm_uuid         ${TEXT} NOT NULL,
  tpm_uuid        ${TEXT},
  attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_attempt_at bigint  NOT NULL,
  last_error      text,
  created_at      bigint  NOT NULL,
  expect_sha256   ${TEXT} CHECK (expect_sha256 IS NULL OR ${HEX64('expect_sha256')}),
  CONSTRAINT pending_deletions_host_path UNIQUE (host_uuid, path)
);
CREATE INDEX pending_deletions_due ON pending_deletions (next_attempt_at);
CREATE INDEX pending_deletions_host_due ON pending_deletions (host_uuid, next_attempt_at);
CREATE INDEX pending_deletions_by_tpm ON pending_deletions (tpm_uuid) WHERE tpm_uuid IS NOT NULL;
CREATE INDEX pending_deletions_by_vm ON pending_deletions (vm_uuid);

CREATE TABLE owned_paths (
  host_uuid  ${TEXT} NOT NULL REFERENCES hosts (uuid) ON DELETE CASCADE,
  path       ${TEXT} NOT NULL CHECK (substr(path, 1, 1) = '/'),
  type       ${TEXT} NOT NULL ${FILE_TYPE},
  vm_uuid    ${TEXT} NOT NULL,
  created_at bigint  NOT NULL,
  PRIMARY KEY (host_uuid, path)
);

CREATE TABLE operations (
  id         ${TEXT} NOT NULL PRIMARY KEY,
  kind       ${TEXT} NOT NULL,
  subject    ${TEXT} NOT NULL,
  step       ${TEXT} NOT NULL,
  state      ${TEXT} NOT NULL CHECK (state IN ('running', 'done', 'failed')),
  input      json    NOT NULL,
  report     json,
  created_at bigint  NOT NULL,
  updated_at bigint  NOT NULL
);
CREATE INDEX operations_unfinished ON operations (created_at) WHERE state = 'running';
`,
};

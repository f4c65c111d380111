// Several controllers on one database: as SQLite's migration 4 (../004-controllers.ts).
import type { Migration } from '../migration.js';

const TEXT = 'text COLLATE "C"';

export const PG_MIGRATION_002: Migration = {
  version: 2,
  name: 'controllers',
  sql: `
CREATE TABLE controllers (
  id         ${TEXT} NOT NULL PRIMARY KEY,
  host       ${TEXT} NOT NULL,
  pid        integer NOT NULL,
  started_at bigint  NOT NULL,
  expires_at bigint  NOT NULL
);

CREATE TABLE leases (
  key           ${TEXT} NOT NULL,
  holder        ${TEXT} NOT NULL,
  controller_id ${TEXT} NOT NULL,
  mode          ${TEXT} NOT NULL CHECK (mode IN ('shared', 'exclusive')),
  acquired_at   bigint  NOT NULL,
  PRIMARY KEY (key, holder)
);
CREATE INDEX leases_by_holder ON leases (holder);
CREATE INDEX leases_by_controller ON leases (controller_id);

ALTER TABLE operations ADD COLUMN controller_id ${TEXT};
`,
};

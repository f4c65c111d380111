// Several controllers on one database: each running process is a row while it lives, every lock key a flow holds is
// a lease row of that process, and each journaled operation names the process running it. A process whose row
// expired is dead to the others: its leases stop counting, its operations are another's to resume, and every write
// transaction of its own is refused from then on (its id is its fencing token: never reused, never renewed once
// expired). See docs/DESIGN.md, "Several controllers".
import type { Migration } from './migration.js';

export const MIGRATION_004: Migration = {
  version: 4,
  name: 'controllers',
  sql: `
CREATE TABLE controllers (
  id         TEXT    NOT NULL PRIMARY KEY,
  host       TEXT    NOT NULL,
  pid        INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) STRICT;

CREATE TABLE leases (
  key           TEXT    NOT NULL,
  -- one flow's claim: a key can have several shared holders
  holder        TEXT    NOT NULL,
  controller_id TEXT    NOT NULL,
  mode          TEXT    NOT NULL CHECK (mode IN ('shared', 'exclusive')),
  acquired_at   INTEGER NOT NULL,
  PRIMARY KEY (key, holder)
) STRICT;
CREATE INDEX leases_by_holder ON leases (holder);
CREATE INDEX leases_by_controller ON leases (controller_id);

ALTER TABLE operations ADD COLUMN controller_id TEXT;
`,
};

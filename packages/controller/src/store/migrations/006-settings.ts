// Settings of the whole database, one row each, read by every process and every flow: a value a process passed per
// call would differ between a `serve` and a shell's `sync` on the same database. The only one so far is how many
// generations are kept per (VM, type) (docs/DESIGN.md, "Generations and fencing"); unset, it is 5.
// A database already holding more generations of some (VM, type) than 5 (a serve run with --keep-generations N)
// keeps that many: upgrading never drops a generation; `hostfiles state keep N` sets it.
import type { Migration } from './migration.js';

export const MIGRATION_006: Migration = {
  version: 6,
  name: 'settings',
  sql: `
CREATE TABLE settings (
  name       TEXT    NOT NULL PRIMARY KEY CHECK (name IN ('keep_generations')),
  value      INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  CHECK (name <> 'keep_generations' OR value BETWEEN 1 AND 9999)
) STRICT;
INSERT INTO settings (name, value, updated_at)
  SELECT 'keep_generations', min(max(n), 9999), CAST(unixepoch('subsec') * 1000 AS INTEGER)
  FROM (SELECT count(*) AS n FROM vm_host_backup_files GROUP BY vm_uuid, type)
  HAVING max(n) > 5;
`,
};

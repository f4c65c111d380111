// Settings of the whole database: as SQLite's migration 6 (../006-settings.ts).
import type { Migration } from '../migration.js';

const TEXT = 'text COLLATE "C"';

export const PG_MIGRATION_004: Migration = {
  version: 4,
  name: 'settings',
  sql: `
CREATE TABLE settings (
  name       ${TEXT} NOT NULL PRIMARY KEY CHECK (name IN ('keep_generations')),
  value      bigint  NOT NULL,
  updated_at bigint  NOT NULL,
  CHECK (name <> 'keep_generations' OR value BETWEEN 1 AND 9999)
);
INSERT INTO settings (name, value, updated_at)
  SELECT 'keep_generations', least(max(n), 9999), (extract(epoch FROM clock_timestamp()) * 1000)::bigint
  FROM (SELECT count(*) AS n FROM vm_host_backup_files GROUP BY vm_uuid, type) AS counts
  HAVING max(n) > 5;
`,
};

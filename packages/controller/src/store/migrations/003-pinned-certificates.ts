// TLS to the agents: each host's pinned certificate (the one its agent derives from its key), PEM. NULL for a host
// reached over plain HTTP: a loopback agent, one added with --allow-plain-http, or one added before TLS existed
// (`hostfiles host set-url` moves such a host to https:// and pins its certificate).
import type { Migration } from './migration.js';

export const MIGRATION_003: Migration = {
  version: 3,
  name: 'pinned-certificates',
  sql: `
ALTER TABLE hosts ADD COLUMN certificate TEXT
  CHECK (certificate IS NULL OR substr(certificate, 1, 27) = '-----BEGIN CERTIFICATE-----');
`,
};

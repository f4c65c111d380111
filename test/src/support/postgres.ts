// The real PostgreSQL of this machine (and CI's): each test gets a schema of its own, dropped after it. Where there is
// no server, the tests that need one skip and say why; CI sets HOSTFILES_REQUIRE_POSTGRES (after checking the server
// answers) so there they fail instead.
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import pg from 'pg';

export const PG_URL = process.env['HOSTFILES_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

async function probe(): Promise<string | undefined> {
  if (process.env['HOSTFILES_REQUIRE_POSTGRES'] === '1') return undefined;
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    return undefined;
  } catch (error) {
    return `PostgreSQL is not reachable at ${PG_URL} (${error instanceof Error ? error.message : String(error)})`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Why the PostgreSQL tests skip here; undefined where they run. */
export const POSTGRES_SKIP = await probe();

/** A fresh schema: its name, the `--db` URL that selects it, and a query on it past the controllers. */
export async function pgSchema(t: TestContext): Promise<{
  readonly schema: string;
  readonly db: string;
  query<R extends pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<R[]>;
}> {
  const schema = `hf_it_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  t.after(async () => {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });
  return {
    schema,
    db: `${PG_URL}?schema=${schema}`,
    query: async <R extends pg.QueryResultRow>(sql: string, params: unknown[] = []) =>
      (await client.query<R>(sql.replaceAll('$schema', schema), params)).rows,
  };
}

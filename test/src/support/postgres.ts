// The real PostgreSQL of this machine (and CI's): each test gets a schema of its own, dropped after it. Where there is
// no server, the tests that need one skip and say why; CI sets HOSTFILES_REQUIRE_POSTGRES (after checking the server
// answers) so there they fail instead.
import { randomBytes } from 'node:crypto';
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

/**
 * A fresh schema: its name, the `--db` URL that selects it, a query on it past the controllers, and `drop()`. The
 * caller drops it once everything using it has stopped (a DROP waits on their locks); bounded, so a cleanup can never
 * hang the run.
 */
export async function pgSchema(): Promise<{
  readonly schema: string;
  readonly db: string;
  query<R extends pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<R[]>;
  drop(): Promise<void>;
}> {
  const schema = `hf_it_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  return {
    schema,
    db: `${PG_URL}?schema=${schema}`,
    query: async <R extends pg.QueryResultRow>(sql: string, params: unknown[] = []) =>
      (await client.query<R>(sql.replaceAll('$schema', schema), params)).rows,
    drop: async () => {
      try {
        await client.query("SET lock_timeout = '10s'");
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await within(5000, client.end());
      }
    },
  };
}

/** Waits for `work`, at most `ms`; past it, goes on (a cleanup step that hangs must not hang the run). */
export async function within(ms: number, work: Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    work.catch(() => undefined),
    new Promise((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}

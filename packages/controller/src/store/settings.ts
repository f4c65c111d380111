// Settings of the whole database (migration 6): one value every process and every flow reads, none per call.
import { DEFAULT_KEEP_GENERATIONS, MAX_KEEP_GENERATIONS, type StoreReads, type StoreWrites } from './types.js';
import type { Context } from './support.js';

/** How many generations of a (vm, type) are kept: the database's setting, else the default. */
export async function readKeepGenerations(sql: Context['sql']): Promise<number> {
  const row = await sql.get<{ value: number }>("SELECT value FROM settings WHERE name = 'keep_generations'");
  return row?.value ?? DEFAULT_KEEP_GENERATIONS;
}

export function settingReads({ sql }: Context) {
  return {
    getKeepGenerations: () => readKeepGenerations(sql),
  } satisfies Partial<StoreReads>;
}

export function settingWrites({ sql, now }: Context) {
  return {
    setKeepGenerations: async (keep) => {
      if (!Number.isInteger(keep) || keep < 1 || keep > MAX_KEEP_GENERATIONS) {
        throw new RangeError(`keep must be a whole number from 1 to ${MAX_KEEP_GENERATIONS}, not ${keep}`);
      }
      await sql.run(
        `INSERT INTO settings (name, value, updated_at) VALUES ('keep_generations', $keep, $at)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
        { keep, at: now() },
      );
    },
  } satisfies Partial<StoreWrites>;
}

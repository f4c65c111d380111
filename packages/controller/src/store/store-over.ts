// The Store's methods over a Connection of either engine: the table groups (inventory, files, deletions,
// operations) are written once, in SQL both SQLite and PostgreSQL run.
import type { Connection, Sql } from './connection.js';
import { controllerReads, controllerWrites } from './controllers.js';
import { deletionReads, deletionWrites } from './deletions.js';
import { fileReads, fileWrites } from './files.js';
import { inventoryReads, inventoryWrites } from './inventory.js';
import { operationReads, operationWrites } from './operations.js';
import { settingReads, settingWrites } from './settings.js';
import type { Context } from './support.js';
import type { Store, StoreReads, StoreTx, StoreWrites } from './types.js';

type Method = (...args: unknown[]) => Promise<unknown>;

/** An object with the same method names as `template`, each calling `call(name, args)` instead. */
function redirect<T extends object>(template: T, call: (name: string, args: unknown[]) => Promise<unknown>): T {
  const entries = Object.keys(template).map((name) => [name, (...args: unknown[]) => call(name, args)]);
  return Object.fromEntries(entries) as T;
}

function invoke(target: object, name: string, args: unknown[]): Promise<unknown> {
  const method = (target as Record<string, Method | undefined>)[name];
  if (method === undefined) throw new Error(`store: no method ${name}`);
  return method(...args);
}

/** A Sql that refuses every statement: the templates below are built only for their method names. */
const NO_SQL: Sql = {
  run: () => Promise.reject(new Error('store: template used')),
  get: () => Promise.reject(new Error('store: template used')),
  all: () => Promise.reject(new Error('store: template used')),
  exec: () => Promise.reject(new Error('store: template used')),
};

/** The Store's methods over a connection of either engine: the table groups are written once for both. */
export function storeOver(connection: Connection, now: () => number): Store {
  let acting: string | null = null;
  const owner = (): string | null => acting;
  const readsOf = (sql: Sql): StoreReads => {
    const context: Context = { sql, now, owner };
    return {
      ...inventoryReads(context),
      ...fileReads(context),
      ...deletionReads(context),
      ...operationReads(context),
      ...controllerReads(context),
      ...settingReads(context),
    };
  };
  const writesOf = (sql: Sql): StoreWrites => {
    const context: Context = { sql, now, owner };
    return {
      ...inventoryWrites(context),
      ...fileWrites(context),
      ...deletionWrites(context),
      ...operationWrites(context),
      ...controllerWrites(context),
      ...settingWrites(context),
    };
  };
  const txOf = (sql: Sql): StoreTx => ({ ...readsOf(sql), ...writesOf(sql) });
  /** The fence, first in a write transaction of a controller: under the write lock, so no takeover slips between. */
  const fenced = async (sql: Sql): Promise<void> => {
    if (acting !== null) await controllerWrites({ sql, now }).checkFence(acting, now());
  };

  return {
    // A read alone needs no transaction (it is its own snapshot); on SQLite it still waits its turn in the queue.
    ...redirect(readsOf(NO_SQL), (name, args) => connection.exclusive((sql) => invoke(readsOf(sql), name, args))),
    // A write alone is a transaction of its own: upsertFile and addTpm are several statements. A controller's own
    // lifecycle (register, renew, retire) is not fenced: it is what the fence reads. A renewal is one statement,
    // outside the write lock: a heartbeat must never wait behind another controller's long transaction, or a busy
    // fleet would expire its own live controllers. It is safe there: it succeeds only on a row not yet expired,
    // while a takeover needs the row expired for a whole grace longer.
    ...redirect(writesOf(NO_SQL), (name, args) =>
      name === 'renewController'
        ? connection.exclusive((sql) => invoke(writesOf(sql), name, args))
        : connection.transaction(async (sql) => {
            if (!UNFENCED.has(name)) await fenced(sql);
            return invoke(writesOf(sql), name, args);
          }),
    ),
    transaction: (fn) =>
      connection.transaction(async (sql) => {
        await fenced(sql);
        return fn(txOf(sql));
      }),
    actAs: (id) => {
      acting = id;
    },
    close: () => connection.close(),
  };
}

const UNFENCED = new Set(['registerController', 'retireController']);

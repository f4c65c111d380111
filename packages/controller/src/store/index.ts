// The store's public API: records, the Store interface, its SQLite implementation, and its error.
export { STORE_ERROR_CODES, StoreError, isStoreError, type StoreErrorCode } from './errors.js';
export { createSqliteStore, type SqliteStoreOptions } from './sqlite-store.js';
export * from './types.js';
export { createPgStore, type PgStoreOptions } from './pg-store.js';

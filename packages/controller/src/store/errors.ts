// The one error the store throws: a closed set of codes, the driver's error as `cause`.
import { hasBrand } from '../brand.js';

export const STORE_ERROR_CODES = ['not_found', 'conflict', 'constraint', 'io', 'schema_too_new'] as const;
export type StoreErrorCode = (typeof STORE_ERROR_CODES)[number];

const STORE_ERROR: unique symbol = Symbol.for('hostfiles.StoreError');

export class StoreError extends Error {
  override readonly name = 'StoreError';
  /** see brand.ts: a StoreError is told apart by it, not by `instanceof` */
  readonly [STORE_ERROR] = true;
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** True for a StoreError, and when `code` is given, only for one with that code. */
export const isStoreError = (error: unknown, code?: StoreErrorCode): error is StoreError =>
  hasBrand(error, STORE_ERROR) && (code === undefined || (error as StoreError).code === code);

const driverCode = (error: unknown): unknown =>
  typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;

/**
 * Maps an error of the sqlite3 driver to a StoreError. The driver reports only the primary result code
 * (SQLITE_CONSTRAINT), not the extended one (SQLITE_CONSTRAINT_UNIQUE), so the kind of constraint is read from
 * SQLite's message, which is stable ("UNIQUE constraint failed: t.c"; primary keys report the same).
 */
export function toStoreError(error: unknown, context: string): StoreError {
  if (isStoreError(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (driverCode(error) === 'SQLITE_CONSTRAINT') {
    const code = message.includes('UNIQUE constraint failed') ? 'conflict' : 'constraint';
    return new StoreError(code, `${context}: ${message}`, { cause: error });
  }
  return new StoreError('io', `${context}: ${message}`, { cause: error });
}

/** PostgreSQL's integrity SQLSTATEs, named as SQLite names them, so a refusal reads the same on either engine. */
const PG_CONSTRAINTS: Readonly<Record<string, readonly [StoreErrorCode, string]>> = {
  '23505': ['conflict', 'UNIQUE constraint failed'],
  '23503': ['constraint', 'FOREIGN KEY constraint failed'],
  '23514': ['constraint', 'CHECK constraint failed'],
  '23502': ['constraint', 'NOT NULL constraint failed'],
  '23P01': ['constraint', 'EXCLUDE constraint failed'],
};

/**
 * Maps an error of the `pg` driver to a StoreError: an integrity violation (SQLSTATE class 23) to 'conflict' or
 * 'constraint', with the constraint's name; anything else (a lost connection, a timeout, a server restart) to 'io'.
 */
export function toPgStoreError(error: unknown, context: string): StoreError {
  if (isStoreError(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  const code = driverCode(error);
  const known = typeof code === 'string' ? PG_CONSTRAINTS[code] : undefined;
  if (known) {
    const constraint =
      typeof error === 'object' && error !== null && 'constraint' in error && typeof error.constraint === 'string'
        ? ` (${error.constraint})`
        : '';
    return new StoreError(known[0], `${context}: ${known[1]}${constraint}: ${message}`, { cause: error });
  }
  return new StoreError('io', `${context}: ${message}`, { cause: error });
}

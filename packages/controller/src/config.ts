// Where the controller's database and key are, and how its flows reach agents: resolved once from flags and env.
import { dirname, join } from 'node:path';

export const DEFAULT_DB_PATH = 'hostfiles.db';
/** The key's file name when no path is given: beside the database. */
export const DEFAULT_KEY_NAME = 'hostfiles.key';

/** The environment values the controller reads; main.ts alone reads process.env and passes them here. */
export interface ControllerEnv {
  /** HOSTFILES_DB */
  readonly db?: string | undefined;
  /** HOSTFILES_KEY: the path of the key file, never the key itself */
  readonly key?: string | undefined;
}

export interface ControllerPaths {
  readonly db: string;
  readonly key: string;
}

const given = (value: string | undefined): string | undefined =>
  value === undefined || value === '' ? undefined : value;

/**
 * The flag, else the environment, else the default. The key's default sits beside a SQLite file; a PostgreSQL
 * database has no "beside", so there the key is named (--key or HOSTFILES_KEY) or read from the working directory.
 */
export function resolvePaths(flags: ControllerEnv, env: ControllerEnv): ControllerPaths {
  const db = given(flags.db) ?? given(env.db) ?? DEFAULT_DB_PATH;
  const beside = isPostgresUrl(db) ? DEFAULT_KEY_NAME : join(dirname(db), DEFAULT_KEY_NAME);
  const key = given(flags.key) ?? given(env.key) ?? beside;
  return { db, key };
}

/** A database named by a postgres:// (or postgresql://) URL rather than a SQLite file's path. */
export const isPostgresUrl = (db: string): boolean => /^postgres(ql)?:\/\//i.test(db);

/**
 * Why `db` names no database hostfiles can open (undefined when it can): a postgres:// URL that cannot name a server
 * (postgresUrlProblem), or a URL of another scheme (mysql://, sqlite://), which would otherwise be taken for the
 * path of a SQLite file of that name.
 */
export function databaseProblem(db: string): string | undefined {
  if (isPostgresUrl(db)) return postgresUrlProblem(db);
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(db)?.[1];
  return scheme === undefined
    ? undefined
    : `${scheme.slice(0, 32)}:// is not a database hostfiles opens: a SQLite file's path or a postgres:// URL`;
}

/** The PostgreSQL schema a URL's `schema` parameter may name: an unquoted identifier, lowercase. */
export const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
/** The `sslmode` values the driver knows (libpq's, and node-postgres's `no-verify`). */
const SSL_MODES = new Set(['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full', 'no-verify']);

/**
 * Why a postgres:// URL cannot name a server (undefined when it can): one that does not parse, whose host is no
 * host name, address or socket directory, which the driver would only find out by a failed lookup (an exit 1 that
 * looks like an outage, for a typo), or whose `schema` or `sslmode` no server could take.
 */
export function postgresUrlProblem(db: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(db);
  } catch {
    return 'it does not parse as a URL';
  }
  const schemas = parsed.searchParams.getAll('schema');
  if (schemas.length > 1) return 'it gives schema more than once';
  const [schema] = schemas;
  if (schema !== undefined && !SCHEMA_NAME.test(schema)) {
    return `its schema is not a lowercase name of letters, digits and _ (${SCHEMA_NAME.source})`;
  }
  const sslModes = parsed.searchParams.getAll('sslmode');
  if (sslModes.length > 1) return 'it gives sslmode more than once';
  const [sslMode] = sslModes;
  if (sslMode !== undefined && !SSL_MODES.has(sslMode)) {
    return `its sslmode is none of ${[...SSL_MODES].join(', ')}`;
  }
  const host = parsed.hostname;
  let decoded: string;
  try {
    decoded = decodeURIComponent(host);
  } catch {
    return 'its host is not percent-encoded right';
  }
  // Empty: the default (or ?host=); a path: a unix socket's directory, percent-encoded in the host.
  if (decoded === '' || decoded.startsWith('/')) return undefined;
  if (/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/.test(decoded) || /^\[[0-9A-Fa-f:.]+\]$/.test(decoded)) return undefined;
  return 'its host is not a host name, an address or a socket directory';
}

/** The URL without its `schema` parameter (ours, not libpq's), and that schema. */
export function splitPostgresUrl(db: string): { readonly url: string; readonly schema: string | undefined } {
  const parsed = new URL(db);
  const schema = parsed.searchParams.get('schema') ?? undefined;
  parsed.searchParams.delete('schema');
  return { url: parsed.toString(), schema };
}

/** The query parameters of a URL the driver reads as secrets (pg-connection-string takes every one as config). */
const SECRET_PARAMETERS = ['password', 'sslpassword'];

/** The database as it may be printed: a URL's password replaced, in its user part and as a parameter. */
export function redactUrl(db: string): string {
  if (!isPostgresUrl(db)) return db;
  try {
    const parsed = new URL(db);
    if (parsed.password !== '') parsed.password = '***';
    for (const name of SECRET_PARAMETERS) if (parsed.searchParams.has(name)) parsed.searchParams.set(name, '***');
    return parsed.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

/** How the CLI's flows run: many hosts at once, patient agent calls, a retry backoff from 5 s up to 10 min. */
export const FLOW_SETTINGS = {
  concurrency: 32,
  retryBaseMs: 5_000,
  retryMaxMs: 600_000,
  agentTimeoutMs: 10_000,
  agentRetries: 2,
  /** A controller not heard from for this long is dead to the others (docs/DESIGN.md, "Several controllers"). */
  leaseMs: 15_000,
  /**
   * How long a dead controller's leases still count: its signed commands live 60 s, and an agent takes them up to its
   * clockSkewMs (30 s by default) late; plus 2 s of clock difference between hosts.
   */
  leaseGraceMs: 92_000,
} as const;

/** Agents' default clockSkewMs: how late after its expiry an agent still takes a command. */
export const AGENT_CLOCK_SKEW_MS = 30_000;

/**
 * The lifetime of the commands a controller signs, so that they are dead once its leases stop counting: the grace
 * less what an agent and the clocks add, between 1 s and the protocol's default of 60 s.
 */
export const commandLifetimeFor = (graceMs: number): number =>
  Math.min(60_000, Math.max(1_000, graceMs - AGENT_CLOCK_SKEW_MS - 2_000));

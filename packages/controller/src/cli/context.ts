// What a running command is handed: the output, and the database, key and agents opened only when it asks.
import { statSync } from 'node:fs';
import { truncate } from '@hostfiles/shared';
import { createAgentClient, type AgentClient } from '../agents/index.js';
import { commandLifetimeFor, FLOW_SETTINGS, type ControllerPaths } from '../config.js';
import {
  createLeasedQueue,
  createVmQueue,
  registerController,
  type ControllerRegistration,
  type FlowDeps,
  type LeaseSettings,
} from '../flows/index.js';

const DEFAULT_LEASE: LeaseSettings = { leaseMs: FLOW_SETTINGS.leaseMs, graceMs: FLOW_SETTINGS.leaseGraceMs };
import { databaseProblem, isPostgresUrl, redactUrl, splitPostgresUrl } from '../config.js';
import { createPgStore, createSqliteStore, isStoreError, type Store } from '../store/index.js';
import type { SchemaReport } from '../store/migrate.js';
import type { CliIo, CommandContext } from './command.js';
import { badInput, CliError } from './errors.js';
import { loadControllerKey } from './key-file.js';
import { createProgress, visible } from './output.js';

export interface ContextOptions {
  readonly io: CliIo;
  readonly json: boolean;
  readonly paths: ControllerPaths;
  readonly now: () => number;
  /** in [0, 1): the jitter of retry backoff */
  readonly random: () => number;
}

export interface OpenedContext {
  readonly ctx: CommandContext;
  /** clears the progress line, closes agent connections and the database if opened; always awaited by the runner */
  readonly close: () => Promise<void>;
}

export function createCommandContext(options: ContextOptions): OpenedContext {
  const { io, paths } = options;
  let store: Promise<Store> | undefined;
  let deps: Promise<FlowDeps> | undefined;
  let agents: AgentClient | undefined;
  let registration: ControllerRegistration | undefined;
  /** stops the note a signal prints while flows may run */
  let quiet: (() => void) | undefined;
  const progress = io.stderrIsTty ? createProgress(io.stderr) : undefined;

  const ctx: CommandContext = {
    io,
    json: options.json,
    paths,
    now: options.now,
    store: () => (store ??= openExistingStore(paths.db)),
    // One FlowDeps per run: its VmQueue must be the only one serializing this process's flows.
    flows: (lease = DEFAULT_LEASE) => (deps ??= openFlows(lease)),
    print(value, human) {
      progress?.finish();
      io.stdout(options.json ? `${JSON.stringify(value, null, 2)}\n` : `${visible(human(), true)}\n`);
    },
  };

  async function openFlows(lease: LeaseSettings): Promise<FlowDeps> {
    // What --db names first (the key's default path is made from it, a URL's password and all), then the key: a bad
    // key file is refused before the database is even opened.
    checkDatabase(paths.db);
    const key = loadControllerKey(paths.key);
    agents = createAgentClient({
      key,
      timeoutMs: FLOW_SETTINGS.agentTimeoutMs,
      retries: FLOW_SETTINGS.agentRetries,
      now: options.now,
      commandLifetimeMs: commandLifetimeFor(lease.graceMs),
    });
    const opened = await ctx.store();
    registration = await registerController(opened, { now: options.now, settings: lease });
    quiet = io.onInterrupt?.((signal) => interruptedText(signal, lease));
    return {
      store: opened,
      agents,
      queue: createLeasedQueue(createVmQueue(), opened, registration, {
        now: options.now,
        // Said once per flow that waits: a command left running by a controller that was stopped holds its VMs until
        // that controller's lease and grace are over, and a wait of that long with no word looks like a hang.
        onWait: (keys) => {
          progress?.finish();
          io.stderr(waitingText(keys, lease));
        },
      }),
      now: options.now,
      random: options.random,
      concurrency: FLOW_SETTINGS.concurrency,
      retryBaseMs: FLOW_SETTINGS.retryBaseMs,
      retryMaxMs: FLOW_SETTINGS.retryMaxMs,
      controller: registration,
      ...(progress === undefined ? {} : { onProgress: progress.onProgress }),
    };
  }

  return {
    ctx,
    close: async () => {
      quiet?.();
      progress?.finish();
      await agents?.close();
      // Retired before the database closes: its leases go at once instead of when they expire.
      await registration?.retire().catch(() => undefined);
      if (store === undefined) return;
      // A store that failed to open has nothing to close; its error was already thrown to the command.
      const opened = await store.catch(() => undefined);
      await opened?.close();
    },
  };
}

/** How long a controller's hold outlives it: its lease, then the grace for a command it sent to land. */
const holdSeconds = (lease: LeaseSettings): number => Math.ceil((lease.leaseMs + lease.graceMs) / 1000);

/**
 * What a command that runs flows says when a signal ends it: what it leaves (an operation it began stays `running`,
 * its VMs held until its lease and grace are over, for a command it sent may still land) and what carries it on.
 */
function interruptedText(signal: NodeJS.Signals, lease: LeaseSettings): string {
  return (
    `hostfiles: stopped by ${signal}: an operation it began stays running (\`hostfiles ops list --state running\`) ` +
    `until \`hostfiles resume\` carries it on, which waits up to ~${holdSeconds(lease)} s for this command's hold to end\n`
  );
}

/** What a command says while another controller holds what it needs (`keys`: `vm:<uuid>`, `host:<uuid>`). */
function waitingText(keys: readonly string[], lease: LeaseSettings): string {
  const named = keys.slice(0, 3).join(', ') + (keys.length > 3 ? ` and ${keys.length - 3} more` : '');
  return (
    `hostfiles: waiting for ${named}: another controller holds them (a command still running, or one that was ` +
    `stopped: its hold ends with its lease and grace, up to ~${holdSeconds(lease)} s)\n`
  );
}

/**
 * Opens and migrates the database; a missing file, or a file or Postgres schema hostfiles never made, is refused
 * (only `init` creates one).
 */
export async function openExistingStore(db: string): Promise<Store> {
  checkDatabase(db);
  if (isPostgresUrl(db)) return openStore(db, { existing: true });
  let isFile: boolean;
  try {
    isFile = statSync(db).isFile();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new CliError(`no database at ${db}: run \`hostfiles init\` first, or name the database with --db`);
    }
    throw new CliError(`cannot use the database ${db}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  if (!isFile) throw new CliError(`the database ${db} is not a file`);
  return openStore(db, { existing: true });
}

/** Bad input (exit 2) when `db` names no database hostfiles can open (databaseProblem). */
export function checkDatabase(db: string): void {
  const problem = databaseProblem(db);
  if (problem === undefined) return;
  // A URL of another scheme is not repeated: redactUrl knows where a postgres:// URL keeps its secrets, not others'.
  const named = isPostgresUrl(db) ? `the database URL ${truncate(redactUrl(db))}` : 'the database';
  throw badInput(`${named} (--db or HOSTFILES_DB) cannot be used: ${problem}`);
}

/**
 * Opens (creating if need be) and migrates the database: a SQLite file, or a PostgreSQL URL (its tables in the
 * URL's `schema` parameter, `public` by default). Errors name the database, never with its password. `existing`:
 * refuse one hostfiles never made instead of creating it.
 */
export async function openStore(
  db: string,
  options: { readonly existing?: boolean; readonly onSchema?: SchemaReport } = {},
): Promise<Store> {
  // Asked of the database a command opens (not of every command: the demo opens its own).
  checkDatabase(db);
  try {
    if (!isPostgresUrl(db)) return await createSqliteStore(db, options);
    const { url, schema } = splitPostgresUrl(db);
    return await createPgStore(url, { schema, ...options });
  } catch (error) {
    const named = redactUrl(db);
    // A file that is there but is no SQLite database: the path handed in is wrong (bad input), said without the SQL.
    if (isStoreError(error) && (error.cause as { code?: unknown } | undefined)?.code === 'SQLITE_NOTADB') {
      throw badInput(`${named} is not a SQLite database (--db names the file \`hostfiles init\` made)`);
    }
    if (isStoreError(error))
      throw new CliError(`cannot open the database ${named}: ${error.message}`, { cause: error });
    if (error instanceof RangeError) throw new CliError(`cannot open the database ${named}: ${error.message}`);
    throw error;
  }
}

#!/usr/bin/env node
// hostfiles-agent: the only module that touches process (argv, signals, exit) or listens.
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import {
  createLogger,
  generateSigningKey,
  trustedKeyFromBase64,
  type Logger,
  type SigningKey,
} from '@hostfiles/shared';
import { createApp } from './app.js';
import { exampleConfig, type AgentConfig } from './config.js';
import type { AgentEvent } from './deps.js';
import {
  createFileStore,
  isFileStoreError,
  type FileStore,
  type Ownerships,
  type RecoveryReport,
} from './files/index.js';
import { openReplayJournal } from './journal/replay-journal.js';
import { createBodyBudget } from './limits/body-budget.js';
import { dropReporter, limitServer, resolveLimits, serverOptions } from './limits/server-limits.js';
import { preflight } from './preflight.js';

const VERSION = (createRequire(import.meta.url)('../package.json') as { version: string }).version;
/** How long SIGTERM waits for in-flight requests before giving up. */
const DRAIN_TIMEOUT_MS = 30_000;

const USAGE = `Usage:
  hostfiles-agent --config FILE       run the agent (JSON config; see print-config-example)
  hostfiles-agent keygen [--out FILE] make an Ed25519 key: PEM to FILE (mode 0600, never overwritten)
                                      or to stdout; prints the public key and keyId as JSON
  hostfiles-agent print-config-example
                                      print a complete example config (replace trustedKeys and hostUuid)
  hostfiles-agent --version | --help

Config: ownership per root gives written files owner:group and fileMode, directories made directly below a
root (<uuid>/) the agent's own owner and topDirMode, deeper ones (tpm2/) owner:group and dirMode. Owners and
groups are names (looked up with getent) or numeric ids; modes are octal strings. Defaults: fileMode "0600",
dirMode "0700", topDirMode "0711" for TpmState and "0700" for NvRam. maxContentBytes caps the decoded content
of one command (default 128 MiB). limits bounds connections, header and request times and the request-body bytes
held at once (see DESIGN.md, "Limits"). Every config problem is reported at once, before anything is made.

Each root is opened once at start and held for the agent's life: a root that is a symbolic link or has one on
its path is refused (exit 2), and a root moved or swapped for a link later is never followed.

At start, before listening, interrupted directory replaces are finished or rolled back (each state ends old or
new, whole) and leftover temp files are removed. A tree that may be the only copy of a state (a state was made at
its name meanwhile) or that someone holds a lock in is never removed: it is moved to .hostfiles-quarantine.<what>.…
in its root, logged (quarantined), listed as a unit, and left for an operator to read or delete. A unit deeper
than 16 levels or with more than 10000 entries answers io_error to stat and read, is left out of listings (logged
unit_unlisted) and of recovery (logged recovery_failed), and can still be deleted. A state is busy while a lock is held on it or a file below it
(a running swtpm's .lock, a QEMU's NVRAM), as /proc/locks shows: writes and deletes of it answer busy.

Logs are JSON lines on stdout. SIGTERM drains in-flight requests and exits 0.
Exit codes: 0 ok, 1 runtime failure, 2 bad usage or bad config.`;

class UsageError extends Error {}

async function main(argv: readonly string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(`${USAGE}\n`);
      return;
    case '--version':
      process.stdout.write(`${VERSION}\n`);
      return;
    case 'print-config-example':
      process.stdout.write(`${JSON.stringify(exampleConfig(), null, 2)}\n`);
      return;
    case 'keygen':
      keygen(option(rest, '--out'));
      return;
    case '--config':
      await run(option(argv, '--config') ?? '');
      return;
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

function option(args: readonly string[], name: string): string | undefined {
  const index = args.indexOf(name);
  if (index === -1) return undefined;
  const value = args[index + 1];
  if (value === undefined || value.startsWith('--')) throw new UsageError(`${name} needs a value`);
  return value;
}

function keygen(out: string | undefined): void {
  const key = generateSigningKey();
  if (out === undefined) process.stdout.write(key.pem);
  else writeFileSync(out, key.pem, { mode: 0o600, flag: 'wx' });
  (out === undefined ? process.stderr : process.stdout).write(
    `${JSON.stringify({ publicKey: key.publicKey, keyId: key.keyId, ...(out === undefined ? {} : { keyFile: out }) })}\n`,
  );
}

function loadOrCreateKey(
  config: AgentConfig,
  existing: SigningKey | undefined,
  onCreate: (key: SigningKey) => void,
): SigningKey {
  if (existing !== undefined) return existing;
  const key = generateSigningKey();
  writeFileSync(config.keyFile, key.pem, { mode: 0o600, flag: 'wx' });
  onCreate(key);
  return key;
}

/** Holds the roots from now on; one that changed since preflight into something unusable is a config problem. */
function openFileStore(config: AgentConfig, ownership: Ownerships, logger: Logger<AgentEvent>): FileStore {
  try {
    return createFileStore({ roots: config.roots, ownership, logger });
  } catch (error) {
    if (isFileStoreError(error)) throw new UsageError(`invalid config:\n  a root cannot be used: ${error.message}`);
    throw error;
  }
}

function logRecovery(logger: Logger<AgentEvent>, recovered: RecoveryReport): void {
  if (recovered.completed + recovered.restored > 0) {
    logger.warn('state_recovered', { completed: recovered.completed, restored: recovered.restored });
  }
  if (recovered.removed > 0) logger.warn('temp_files_removed', { count: recovered.removed });
  // Each also has its own `quarantined` line, with its path.
  if (recovered.quarantined > 0) logger.warn('state_recovered', { quarantined: recovered.quarantined });
}

async function run(configPath: string): Promise<void> {
  if (configPath === '') throw new UsageError('--config needs a file');
  // Every problem at once, and nothing made (state directory, key) before the config is known to be good.
  const checked = preflight(configPath);
  if (!checked.ok) throw new UsageError(`invalid config:\n  ${checked.error.join('\n  ')}`);
  const { config, ownership } = checked.value;
  const logger = createLogger<AgentEvent>({
    write: (line) => process.stdout.write(line),
    fields: { hostUuid: config.hostUuid },
  });
  const files = openFileStore(config, ownership, logger);
  mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  const signer = loadOrCreateKey(config, checked.value.signer, (key) => {
    logger.info('key_generated', { keyFile: config.keyFile, keyId: key.keyId });
  });
  // Before listening: every interrupted replace ends as exactly its old or its new state.
  logRecovery(logger, await files.recover());
  const journal = await openReplayJournal({ dir: config.stateDir, now: Date.now });
  const trustedKeys = new Map(config.trustedKeys.map((key) => trustedKeyFromBase64(key)).map((k) => [k.keyId, k]));
  const limits = resolveLimits(config.maxBodyBytes, config.limits);
  const app = createApp({
    hostUuid: config.hostUuid,
    version: VERSION,
    startedAt: Date.now(),
    roots: config.roots,
    trustedKeys,
    signer,
    journal,
    files,
    logger,
    now: Date.now,
    maxBodyBytes: config.maxBodyBytes,
    bodyBudget: createBodyBudget({
      limit: limits.bodyBytesInFlight,
      largeBytesPerSecond: limits.largeBodyBytesPerSecond,
      now: Date.now,
    }),
    maxContentBytes: config.maxContentBytes,
    clockSkewMs: config.clockSkewMs,
  });
  const server = serve(
    {
      fetch: app.fetch,
      hostname: config.listen.host,
      port: config.listen.port,
      serverOptions: serverOptions(limits),
      // A body left unread is refused with Connection: close, and Node discards the rest by itself: hono's own
      // draining would keep every such request's objects alive another 500 ms (~60 MB more under a flood of them).
      autoCleanupIncoming: false,
    },
    (info: AddressInfo) => {
      logger.info('listening', { host: info.address, port: info.port, keyId: signer.keyId, version: VERSION });
    },
  );
  const onDrop = dropReporter((dropped) => {
    logger.warn('connections_dropped', { dropped, maxConnections: limits.maxConnections });
  }, Date.now);
  limitServer(server, limits, onDrop);
  server.on('error', (error: Error) => {
    process.stderr.write(`hostfiles-agent: cannot listen: ${error.message}\n`);
    process.exit(1);
  });
  const stop = (signal: string): void => {
    logger.info('draining', { signal });
    setTimeout(() => process.exit(1), DRAIN_TIMEOUT_MS).unref();
    server.close(() => {
      journal.close().then(
        () => {
          logger.info('stopped', {});
          process.exit(0);
        },
        (error: unknown) => {
          process.stderr.write(`hostfiles-agent: closing the journal failed: ${String(error)}\n`);
          process.exit(1);
        },
      );
    });
    if ('closeIdleConnections' in server) server.closeIdleConnections();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof UsageError) {
    process.stderr.write(`hostfiles-agent: ${error.message}\n`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`hostfiles-agent: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
});

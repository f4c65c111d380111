#!/usr/bin/env node
// hostfiles-agent: the only module that touches process (argv, signals, exit) or listens.
import { fstatSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import type { Server as TlsServer } from 'node:tls';
import { serve, type ServerType } from '@hono/node-server';
import {
  createLogger,
  createMetricsServer,
  generateSigningKey,
  isJournalStream,
  keyFingerprint,
  METRICS_PATH,
  ok,
  trustedKeyFromBase64,
  watchReaders,
  type Logger,
  type SigningKey,
  type TrustedKey,
} from '@hostfiles/shared';
import { createApp } from './app.js';
import { checkConfigFile, exampleConfig, type AgentConfig } from './config.js';
import type { AgentEvent } from './deps.js';
import {
  createFileStore,
  isFileStoreError,
  makeMissingRoots,
  type FileStore,
  type Ownerships,
  type RecoveryReport,
} from './files/index.js';
import { openReplayJournal } from './journal/replay-journal.js';
import { createAddressRate, limitNewConnections } from './limits/address-rate.js';
import { createConnectionPlaces, type ConnectionPlaces } from './limits/connection-places.js';
import { createBodyBudget } from './limits/body-budget.js';
import { dropReporter, limitServer, resolveLimits, serverOptions, type ServerLimits } from './limits/server-limits.js';
import { createAgentMetrics, type AgentRegistry } from './metrics/agent-metrics.js';
import { resolveOwnerships } from './ownership-config.js';
import { checkKeyFile, preflight } from './preflight.js';
import { reloadConfig } from './reload.js';
import { lockStateDir } from './state-lock.js';
import { createLineBatch } from './line-batch.js';
import { refuseUntrustedClients, tlsServerOptions } from './transport.js';
import { VERSION } from './version.js';

/** How long SIGTERM waits for in-flight requests before giving up. */
const DRAIN_TIMEOUT_MS = 30_000;

// A reader of the log lines that went away (`hostfiles-agent --config … | head`, a journal stream that broke) is no
// reason to stop serving, in the middle of ops perhaps: the lines are dropped from then on. What the agent must not
// lose is on disk (the replay journal, the states), not in its log.
const readerGone = watchReaders(process, (name) => {
  if (name === 'stdout' && !readerGone.stderr) {
    process.stderr.write('hostfiles-agent: nobody reads stdout any more (EPIPE): log lines are dropped from now on\n');
  }
});
const toStdout = (text: string): void => {
  if (!readerGone.stdout) process.stdout.write(text);
};

const USAGE = `Usage:
  hostfiles-agent --config FILE       run the agent (JSON config; see print-config-example)
  hostfiles-agent keygen [--out FILE] make an Ed25519 key: PEM to FILE (mode 0600, never overwritten)
                                      or to stdout; prints the public key, keyId and fingerprint as JSON
  hostfiles-agent info --config FILE  print this agent's hostUuid, publicKey, keyId and fingerprint as JSON:
                                      what the controller's \`host add --expect-key\` takes (publicKey or
                                      fingerprint), read here on the host, not over the network
  hostfiles-agent make-roots --config FILE
                                      make each missing root as libvirt makes it (TpmState root's 0711, NvRam
                                      ownership.NvRam's owner:group 0755) when its parent exists; an existing
                                      root is never touched. Logs root_made or root_missing; the unit runs it
                                      before the agent
  hostfiles-agent print-config-example
                                      print a complete example config (replace trustedKeys and hostUuid)
  hostfiles-agent --version | --help

Config: ownership per root gives written files owner:group and fileMode, directories made directly below a
root (<uuid>/) the agent's own owner and topDirMode, deeper ones (tpm2/) owner:group and dirMode. Owners and
groups are names (looked up with getent) or numeric ids as JSON numbers; modes are octal strings. Defaults:
fileMode "0600", dirMode "0700", topDirMode "0711" for TpmState and "0700" for NvRam. maxContentBytes caps the
decoded content of one command (default 128 MiB). limits bounds connections, header and request times and the
request-body bytes held at once (see DESIGN.md, "Limits"). Every config problem is reported at once, before
anything is made: the config's own and, for every field that parsed, what is wrong on disk (roots, stateDir,
keyFile, owners); a check whose field did not parse is skipped.

Each root is opened once at start and held for the agent's life: a root that is a symbolic link or has one on
its path is refused (exit 2), and a root moved or swapped for a link later is never followed.

At start, before listening, interrupted directory replaces are finished or rolled back (each state ends old or
new, whole) and leftover temp files are removed. A tree that may be the only copy of a state (a state was made at
its name meanwhile) or that someone holds a lock in is never removed: it is moved to .hostfiles-quarantine.<what>.…
in its root, logged (quarantined), listed as a unit, and left for an operator to read or delete. A unit deeper
than 16 levels or with more than 10000 entries answers io_error to stat and read, is left out of listings (logged
unit_unlisted) and of recovery (logged recovery_failed), and can still be deleted; one holding a file over 1 GiB
(never hashed) answers io_error to stat and is left out of listings the same way. A listing reads at most 5000
names from a root, hashes at most 64 GiB, and stops when the time its request gives it is up (the
hostfiles-answer-within-ms header); past any of these it answers truncated (logged listing_truncated). A state
is busy while a lock is held on it or a file below it (a running swtpm's .lock, a QEMU's NVRAM), as /proc/locks
shows: writes and deletes of it answer busy.

Transport (listen): HTTPS, TLS 1.3 only, with a self-signed certificate derived from the agent's own key (the same
bytes at every start: no certificate file). Mutual TLS by default (clientAuth "required"): a client must present the
certificate of one of trustedKeys (the controller makes it from its own key), or its connection is closed right after
the handshake, before any HTTP is read (logged client_refused, at most once a second per reason). clientAuth "none"
leaves that to the signatures. tls: false serves plain HTTP: only on a loopback address (127.0.0.0/8, ::1, localhost)
unless allowPlainHttp: true.

Metrics (metrics, absent: off): Prometheus text at GET /metrics on a listener of its own, plain HTTP, never on
listen's. host defaults to 127.0.0.1 and port to 9464; a host other than loopback only with allowPlainHttp: true.
Logged metrics_listening with the port once it listens, before listening.

Logs are JSON lines on stdout, ISO times, the events listed in the README; when stdout is the journal (systemd's
JOURNAL_STREAM names it) each line starts with its syslog priority: <6> info, <4> warn, <3> error.
SIGTERM drains in-flight requests and exits 0. SIGHUP reads the config file again and applies trustedKeys (logged
reloaded: the keyIds added and removed, and needsRestart: the keys changed in the file that only a restart applies:
everything else); a config that does not validate changes nothing (logged reload_failed with every problem) and the
agent serves on.

One agent per stateDir: a second one started on it exits 2, naming the holder's pid. The lock is the unix socket
<stateDir>/agent.lock (0600) the holder listens on; a holder that died however (even SIGKILL) leaves a file nobody
listens on, which the next agent removes. A SIGHUP before the agent is ready is kept and applied once it is.
Exit codes: 0 ok, 1 runtime failure, 2 bad usage or bad config.`;

class UsageError extends Error {}

/** Every problem of a config, one a line: exit 2, as bad usage (systemd does not restart it). */
const invalidConfig = (problems: readonly string[]): UsageError =>
  new UsageError(`invalid config:\n  ${problems.join('\n  ')}`);

/** The commands whose `--help` prints their usage (anything else with --help is still an unknown command). */
const COMMANDS: ReadonlySet<string> = new Set(['print-config-example', 'keygen', 'info', 'make-roots', '--config']);

async function main(argv: readonly string[]): Promise<void> {
  const [command, ...rest] = argv;
  // Help asked for is help given, whatever the command: never a key made, a config printed or an agent started.
  if (COMMANDS.has(command ?? '') && (rest.includes('--help') || rest.includes('-h'))) {
    process.stdout.write(`${command === 'keygen' ? KEYGEN_USAGE : USAGE}\n`);
    return;
  }
  switch (command) {
    case undefined:
      // Nothing asked: the usage where errors go, and the exit of bad usage (a unit or script missing its --config).
      process.stderr.write(`${USAGE}\n`);
      process.exitCode = 2;
      return;
    case '--help':
    case '-h':
    case 'help':
      onlyOptions(rest, [], command);
      process.stdout.write(`${USAGE}\n`);
      return;
    case '--version':
      onlyOptions(rest, [], command);
      process.stdout.write(`${VERSION}\n`);
      return;
    case 'print-config-example':
      onlyOptions(rest, [], 'print-config-example');
      process.stdout.write(`${JSON.stringify(exampleConfig(), null, 2)}\n`);
      return;
    case 'keygen':
      onlyOptions(rest, ['--out'], 'keygen');
      keygen(option(rest, '--out'));
      return;
    case 'info':
      onlyOptions(rest, ['--config'], 'info');
      info(option(rest, '--config') ?? '');
      return;
    case 'make-roots':
      onlyOptions(rest, ['--config'], 'make-roots');
      makeRoots(option(rest, '--config') ?? '');
      return;
    case '--config':
      onlyOptions(argv, ['--config'], 'hostfiles-agent --config FILE');
      await run(option(argv, '--config') ?? '');
      return;
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

const KEYGEN_USAGE = `Usage: hostfiles-agent keygen [--out FILE]
  Makes an Ed25519 key. With --out, writes its PKCS#8 PEM to FILE (mode 0600; an existing FILE is never
  overwritten) and prints {publicKey, keyId, fingerprint, keyFile} as JSON on stdout. Without --out, the PEM goes
  to stdout and the JSON (without keyFile) to stderr. Exit 2 on any other argument.`;

/**
 * Every argument is one of `names`, each followed by its value and given once; anything else is a usage error (a
 * second `--config` was ignored, and the agent ran on the first).
 */
function onlyOptions(args: readonly string[], names: readonly string[], command: string): void {
  const seen = new Set<string>();
  for (let i = 0; i < args.length; i += 2) {
    const arg = args[i] ?? '';
    if (!names.includes(arg)) throw new UsageError(`${command} takes no argument ${arg.slice(0, 64)}`);
    if (seen.has(arg)) throw new UsageError(`${command}: ${arg} is given twice`);
    seen.add(arg);
  }
}

function option(args: readonly string[], name: string): string | undefined {
  const index = args.indexOf(name);
  if (index === -1) return undefined;
  const value = args[index + 1];
  if (value === undefined || value.startsWith('--')) throw new UsageError(`${name} needs a value`);
  return value;
}

/** Whether `path` leads to a directory; false for anything else, a link that leads nowhere included. */
function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Errors of a key path keygen can't write: the path's fault, not the machine's. */
const KEY_PATH_ERRORS: ReadonlySet<string> = new Set(['ENOTDIR', 'EACCES', 'EPERM', 'EROFS', 'ELOOP', 'ENAMETOOLONG']);

function keygen(out: string | undefined): void {
  const key = generateSigningKey();
  if (out === undefined) process.stdout.write(key.pem);
  else {
    try {
      writeFileSync(out, key.pem, { mode: 0o600, flag: 'wx' });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EISDIR' || (code === 'EEXIST' && isDirectory(out))) {
        throw new UsageError(`${out} is a directory: --out names the key file to make`);
      }
      if (code === 'EEXIST') throw new UsageError(`${out} exists: keygen never overwrites a key (remove it first)`);
      // Where the key cannot go (no such directory, a file for one, no permission, a read-only mount): the path
      // handed in is wrong, exit 2, said in words rather than as the raw errno text.
      if (code === 'ENOENT') throw new UsageError(`cannot make ${out}: the directory ${dirname(out)} does not exist`);
      if (code !== undefined && KEY_PATH_ERRORS.has(code)) throw new UsageError(`cannot make ${out}: ${code}`);
      throw error;
    }
  }
  (out === undefined ? process.stderr : process.stdout).write(
    `${JSON.stringify({ ...identity(key), ...(out === undefined ? {} : { keyFile: out }) })}\n`,
  );
}

const identity = (key: SigningKey): { publicKey: string; keyId: string; fingerprint: string } => ({
  publicKey: key.publicKey,
  keyId: key.keyId,
  fingerprint: keyFingerprint(key.publicKey),
});

/** What the operator hands the controller's `host add --expect-key`, read on the host itself. */
function info(configPath: string): void {
  if (configPath === '') throw new UsageError('info needs --config FILE');
  const { config, problems, fields } = checkConfigFile(configPath);
  const { keyFile, stateDir } = fields;
  // The key file is looked at whenever keyFile parsed: its problem is listed beside the config's others.
  const key = keyFile === undefined ? ok(undefined) : checkKeyFile({ keyFile, stateDir });
  if (config === undefined) throw invalidConfig([...problems, ...(key.ok ? [] : [key.error])]);
  if (!key.ok) throw new UsageError(key.error);
  if (key.value === undefined) {
    throw new Error(
      `no key at ${config.keyFile} yet: the agent makes it at its first start (or \`hostfiles-agent keygen --out ${config.keyFile}\`)`,
    );
  }
  process.stdout.write(`${JSON.stringify({ hostUuid: config.hostUuid, ...identity(key.value) }, null, 2)}\n`);
}

/** Before the agent starts (the unit's ExecStartPre): missing roots made, so that a new host's agent can start. */
function makeRoots(configPath: string): void {
  if (configPath === '') throw new UsageError('make-roots needs --config FILE');
  const { config, problems, fields } = checkConfigFile(configPath);
  // The owners and groups that parsed are looked up whatever else is wrong: every problem in one run.
  const ownership = resolveOwnerships(fields.ownership ?? {});
  if (config === undefined || !ownership.ok) {
    throw invalidConfig([...problems, ...(ownership.ok ? [] : ownership.error)]);
  }
  const logger = createLogger<AgentEvent>({
    write: toStdout,
    fields: { hostUuid: config.hostUuid },
    // The unit's ExecStartPre: its stdout is the journal too.
    syslogPrefix: isJournalStream(process.env['JOURNAL_STREAM'], fstatSync(1, { bigint: true })),
  });
  for (const outcome of makeMissingRoots(config.roots, ownership.value)) {
    if (outcome.made) logger.info('root_made', outcome);
    else logger.warn('root_missing', outcome);
  }
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
    if (isFileStoreError(error)) throw invalidConfig([`a root cannot be used: ${error.message}`]);
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

/** HTTPS (mutual TLS unless the config says otherwise), or plain HTTP where the config allows it. */
function listen(
  app: { readonly fetch: Parameters<typeof serve>[0]['fetch'] },
  config: AgentConfig,
  limits: ServerLimits,
  signer: SigningKey,
  trustedKeys: ReadonlyMap<string, TrustedKey>,
  places: ConnectionPlaces,
  logger: Logger<AgentEvent>,
): ServerType {
  const { host, port, tls, clientAuth } = config.listen;
  const onListening = (info: AddressInfo): void => {
    logger.info('listening', {
      host: info.address,
      port: info.port,
      tls,
      clientAuth: tls ? clientAuth : 'none',
      keyId: signer.keyId,
      fingerprint: keyFingerprint(signer.publicKey),
      version: VERSION,
    });
  };
  const common = {
    fetch: app.fetch,
    hostname: host,
    port,
    // A body left unread is refused with Connection: close, and Node discards the rest by itself: hono's own
    // draining would keep every such request's objects alive another 500 ms (~60 MB more under a flood of them).
    autoCleanupIncoming: false,
  };
  const server = tls
    ? serve(
        {
          ...common,
          createServer: createHttpsServer,
          // headersTimeout does not cover the handshake: a peer that never finishes one is dropped as soon.
          serverOptions: {
            ...serverOptions(limits),
            ...tlsServerOptions(signer, clientAuth),
            handshakeTimeout: limits.headersTimeoutMs,
          },
        },
        onListening,
      )
    : serve({ ...common, serverOptions: serverOptions(limits) }, onListening);
  // Before the first connection: serve() has only asked to listen.
  if (tls && clientAuth === 'required') {
    refuseUntrustedClients(server as TlsServer, trustedKeys, logger, Date.now, (socket) => {
      places.trust(socket);
    });
  }
  limitServer(server, limits);
  const rate = createAddressRate({
    perSecond: limits.newConnectionsPerSecond,
    burst: limits.newConnectionsBurst,
    now: Date.now,
  });
  const { maxConnections } = limits;
  limitNewConnections(
    server,
    { rate, places },
    {
      onRateLimited: dropReporter((refused) => {
        logger.warn('connections_rate_limited', { refused, perSecond: limits.newConnectionsPerSecond });
      }, Date.now),
      onAddressFull: dropReporter((replaced) => {
        logger.warn('connections_address_limited', { replaced, perAddress: limits.connectionsPerAddress });
      }, Date.now),
      onFull: dropReporter((dropped) => {
        logger.warn('connections_dropped', { dropped, maxConnections });
      }, Date.now),
      onReplaced: dropReporter((replaced) => {
        logger.warn('connections_replaced', { replaced, maxConnections });
      }, Date.now),
    },
  );
  return server;
}

/** The metrics listener (plain HTTP, GET /metrics only); a failure to listen is a runtime failure, as the agent's. */
function listenMetrics(
  { registry }: AgentRegistry,
  { host, port }: NonNullable<AgentConfig['metrics']>,
  logger: Logger<AgentEvent>,
): Promise<HttpServer> {
  const server = createMetricsServer(
    async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
    (error) => {
      logger.warn('metrics_failed', { message: error instanceof Error ? error.message : String(error) });
    },
  );
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(new Error(`cannot listen for metrics on ${host}:${port}: ${error.code ?? error.message}`));
    });
    server.listen(port, host, () => {
      const info = server.address() as AddressInfo;
      logger.info('metrics_listening', { host: info.address, port: info.port, path: METRICS_PATH });
      resolve(server);
    });
  });
}

/** SIGHUP: the trusted keys from the config file again; a bad file changes nothing and the agent serves on. */
function reload(
  configPath: string,
  running: AgentConfig,
  trustedKeys: Map<string, TrustedKey>,
  logger: Logger<AgentEvent>,
): void {
  const outcome = reloadConfig(configPath, running, trustedKeys);
  if (!outcome.ok) {
    logger.error('reload_failed', {
      configFile: configPath,
      kept: 'the running config',
      problems: outcome.problems.join('; '),
    });
    return;
  }
  logger.info('reloaded', {
    configFile: configPath,
    trustedKeys: outcome.trusted,
    added: outcome.added.join(','),
    removed: outcome.removed.join(','),
    needsRestart: outcome.needsRestart.join(','),
  });
}

/**
 * SIGHUP from the first moment (its default ends the process: a `systemctl reload` during start-up would kill the
 * agent): until `ready` it only remembers the ask, then does one reload for any number of them.
 */
function deferReloads(): { ready(reloadNow: () => void): void } {
  let onHangup: (() => void) | undefined;
  let asked = false;
  process.on('SIGHUP', () => {
    if (onHangup === undefined) asked = true;
    else onHangup();
  });
  return {
    ready(reloadNow) {
      onHangup = reloadNow;
      if (asked) reloadNow();
    },
  };
}

async function run(configPath: string): Promise<void> {
  const reloads = deferReloads();
  if (configPath === '') throw new UsageError('--config needs a file');
  // Every problem at once, and nothing made (state directory, key) before the config is known to be good.
  const checked = preflight(configPath);
  if (!checked.ok) throw invalidConfig(checked.error);
  const { config, ownership } = checked.value;
  // Lines go out once per turn of the event loop (line-batch.ts), and whatever is left when the process exits.
  const lines = createLineBatch(toStdout);
  process.on('exit', () => {
    lines.flush();
  });
  const logger = createLogger<AgentEvent>({
    write: (line) => {
      lines.write(line);
    },
    fields: { hostUuid: config.hostUuid },
    // Under systemd with stdout to the journal, each line carries its syslog priority for journald.
    syslogPrefix: isJournalStream(process.env['JOURNAL_STREAM'], fstatSync(1, { bigint: true })),
  });
  const files = openFileStore(config, ownership, logger);
  mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  // Before the key, recovery and the journal: a second agent on this stateDir would replay and recover under the
  // first one's feet. Held until the process ends, however it ends.
  const locked = await lockStateDir(config.stateDir, process.pid);
  // Only another agent's lock is a usage error (exit 2, which systemd does not restart); anything else may pass.
  if (!locked.ok) throw locked.inUse ? new UsageError(locked.error) : new Error(locked.error);
  const signer = loadOrCreateKey(config, checked.value.signer, (key) => {
    logger.info('key_generated', { keyFile: config.keyFile, keyId: key.keyId });
  });
  // Before listening: every interrupted replace ends as exactly its old or its new state.
  logRecovery(logger, await files.recover());
  const journal = await openReplayJournal({ dir: config.stateDir, now: Date.now });
  const trustedKeys = new Map(config.trustedKeys.map((key) => trustedKeyFromBase64(key)).map((k) => [k.keyId, k]));
  // From here on a SIGHUP reloads (one asked before is done now): the keys are shared with the app and the TLS check.
  reloads.ready(() => {
    reload(configPath, config, trustedKeys, logger);
  });
  const limits = resolveLimits(config.maxBodyBytes, config.limits);
  const bodyBudget = createBodyBudget({
    limit: limits.bodyBytesInFlight,
    largeBytesPerSecond: limits.largeBodyBytesPerSecond,
    now: Date.now,
  });
  const metrics =
    config.metrics === undefined
      ? undefined
      : createAgentMetrics({ bodyBytesInFlight: () => bodyBudget.inFlight(), journalBytes: () => journal.size() });
  // A connection proven a controller's (its certificate, or a command of its: routes/signed.ts) keeps its place.
  const places = createConnectionPlaces(limits.maxConnections, limits.connectionsPerAddress);
  const app = createApp({
    trustConnection: (peer) => {
      places.trust(peer);
    },
    connectionTrusted: (peer) => places.trusted(peer),
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
    bodyBudget,
    maxContentBytes: config.maxContentBytes,
    clockSkewMs: config.clockSkewMs,
    ...(metrics === undefined ? {} : { metrics: metrics.metrics }),
  });
  // Before the agent's own listener: once `listening` is logged, the metrics are served too.
  const metricsServer =
    metrics === undefined || config.metrics === undefined
      ? undefined
      : await listenMetrics(metrics, config.metrics, logger);
  const server = listen(app, config, limits, signer, trustedKeys, places, logger);
  server.on('error', (error: Error) => {
    process.stderr.write(`hostfiles-agent: cannot listen: ${error.message}\n`);
    process.exit(1);
  });
  const stop = (signal: string): void => {
    logger.info('draining', { signal });
    setTimeout(() => process.exit(1), DRAIN_TIMEOUT_MS).unref();
    metricsServer?.close();
    metricsServer?.closeAllConnections();
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

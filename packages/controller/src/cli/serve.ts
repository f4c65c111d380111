// `hostfiles serve`: the HTTP API for the cloud platform, the retry worker and health checks, until SIGTERM or SIGINT.
// This module is the command's table entry and the checks of its flags; what serves is loaded from serve-run.ts.
import { FLOW_SETTINGS } from '../config.js';
import type { Command } from './command.js';
import { UsageError } from './errors.js';
import type { ListenAddress } from './serve-run.js';
import { refuseKeepFlag, removedKeepFlag } from './state.js';

export type { ServeEvent } from './serve-log.js';

export const DEFAULT_LISTEN = '127.0.0.1:7440';
export const DEFAULT_HEALTH_INTERVAL_MS = 10_000;
/** The bearer token's least length (serve-files.ts checks it; here for --help, which loads no file reader). */
export const MIN_TOKEN_LENGTH = 16;

const HINT = 'see `hostfiles serve --help`';

export const SERVE_COMMANDS: readonly Command[] = [
  {
    words: ['serve'],
    args: [],
    flags: [
      { name: 'listen', value: 'HOST:PORT', help: `where the API listens (default: ${DEFAULT_LISTEN}; port 0: any)` },
      {
        name: 'token-file',
        value: 'FILE',
        required: true,
        help: `the API's bearer token: one line, at least ${MIN_TOKEN_LENGTH} characters, the file mode 0600`,
      },
      { name: 'tls-cert', value: 'FILE', help: 'serve HTTPS with this certificate (PEM; with --tls-key)' },
      { name: 'tls-key', value: 'FILE', help: 'the private key of --tls-cert (PEM, the file mode 0600)' },
      {
        name: 'allow-plain-http',
        help: 'serve plain HTTP on an address that is not loopback (the bearer token would cross in clear)',
      },
      {
        name: 'lease-ms',
        value: 'MS',
        help: `beside other controllers: this one is dead to them when not renewed for MS (default: ${FLOW_SETTINGS.leaseMs})`,
      },
      {
        name: 'lease-grace-ms',
        value: 'MS',
        help: `how long a dead controller's leases and operations stay its own; its commands live this less 32 s (default: ${FLOW_SETTINGS.leaseGraceMs})`,
      },
      {
        name: 'metrics-listen',
        value: 'HOST:PORT',
        help: 'serve Prometheus metrics at GET /metrics there, plain HTTP, apart from the API (default: off)',
      },
      {
        name: 'metrics-allow-plain-http',
        help: '--metrics-listen on an address that is not loopback (anyone reaching it reads the metrics)',
      },
      removedKeepFlag('keep-generations'),
      {
        name: 'health-interval-ms',
        value: 'MS',
        help: `how often every host is health-checked (default: ${DEFAULT_HEALTH_INTERVAL_MS})`,
      },
    ],
    summary: 'run the HTTP API (bearer token) with the retry worker and health checks, until SIGTERM',
    details: [
      'At start and in every round, resumes the operations a stopped controller left unfinished (one that died or',
      'was killed: once its --lease-ms and --lease-grace-ms are over, as its commands may still be in flight), then',
      'health-checks the hosts,',
      "drains a host's pending deletions as soon as it reconnects, and retries the others when due.",
      'The API is under /v1 and described at /v1/openapi.json; every route but GET /v1/health needs',
      '`Authorization: Bearer TOKEN`. The token is read from --token-file only (never argv or environment).',
      'HTTPS with --tls-cert and --tls-key (TLS 1.2 or later). Plain HTTP only on a loopback address, unless',
      '--allow-plain-http: the bearer token and VM state would cross the network in clear.',
      'Metrics with --metrics-listen (e.g. 127.0.0.1:9465): GET /metrics, no token, on their own listener, before',
      'the API listens (logged metrics_listening with the port); a non-loopback address only with',
      '--metrics-allow-plain-http. The names are in the README.',
      'Logs are JSON lines on stdout (ISO times, the events listed in the README); once listening:',
      '{"event":"listening","port":N,...}. When stdout is the journal (systemd\'s JOURNAL_STREAM names it), each line',
      'starts with its syslog priority: <6> info, <4> warn, <3> error.',
      'SIGTERM or SIGINT: stop accepting, finish the requests in flight, stop the worker, close the database, exit 0.',
      'SIGHUP: read --token-file (and --tls-cert, --tls-key) again and use them from the next request (connection',
      'for TLS); logged reloaded. A file that no longer reads or checks changes nothing: logged reload_failed with',
      'why, and serve goes on with what it had. Every other option is read once: restart serve to change it.',
      'Several serve processes may share one database (PostgreSQL, or SQLite on one machine): flows hold their keys',
      'as leases there, each process checks and drains its share of the hosts, and resumes the operations of a',
      'process that died once its lease and grace are over. A process whose own lease expired exits 1.',
    ].join('\n'),
    async run(ctx, input) {
      // First: a signal that lands while resuming stops serve too, instead of killing it mid-flow.
      const stop = ctx.io.stopSignal?.();
      refuseKeepFlag(input.string('keep-generations'), 'keep-generations');
      const address = parseListen(input.string('listen') ?? DEFAULT_LISTEN, 'listen');
      const metricsListen = input.string('metrics-listen');
      const metricsAddress = metricsListen === undefined ? undefined : parseListen(metricsListen, 'metrics-listen');
      // node:net, node:crypto, node:fs and the rest only now: the table (and --help) loads none of them.
      const [{ isLoopbackHost }, { checkMetricsAddress }, { loadTls, loadToken }] = await Promise.all([
        import('@hostfiles/shared'),
        import('./metrics-listener.js'),
        import('./serve-files.js'),
      ]);
      if (metricsAddress !== undefined) {
        checkMetricsAddress(metricsAddress, input.bool('metrics-allow-plain-http'), HINT);
      } else if (input.bool('metrics-allow-plain-http')) {
        throw new UsageError('--metrics-allow-plain-http goes with --metrics-listen', HINT);
      }
      const healthIntervalMs = parseInterval(input.string('health-interval-ms'));
      const tls = loadTls(input.string('tls-cert'), input.string('tls-key'));
      if (tls === undefined && !isLoopbackHost(address.host) && !input.bool('allow-plain-http')) {
        throw new UsageError(
          `plain HTTP on ${address.host} would send the bearer token and VM state in clear: give --tls-cert and ` +
            '--tls-key, listen on a loopback address, or --allow-plain-http',
          HINT,
        );
      }
      const files = {
        tokenFile: input.required('token-file'),
        tlsCert: input.string('tls-cert'),
        tlsKey: input.string('tls-key'),
      };
      const token = loadToken(files.tokenFile);
      const lease = {
        leaseMs: parseMs(input.string('lease-ms'), 'lease-ms', FLOW_SETTINGS.leaseMs),
        graceMs: parseMs(input.string('lease-grace-ms'), 'lease-grace-ms', FLOW_SETTINGS.leaseGraceMs),
      };
      const { runServe } = await import('./serve-run.js');
      await runServe(ctx, {
        stop,
        address: { ...address, tls },
        metricsAddress,
        healthIntervalMs,
        token,
        files,
        lease,
      });
    },
  },
];

/** HOST:PORT, [IPv6]:PORT */
function parseListen(value: string, flag: 'listen' | 'metrics-listen'): ListenAddress {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(value);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (host === undefined || !(port <= 65_535)) {
    throw new UsageError(`--${flag} is HOST:PORT (e.g. ${DEFAULT_LISTEN} or [::1]:7440), not ${value}`, HINT);
  }
  return { host, port };
}

function parseMs(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const ms = /^\d{1,9}$/.test(value) ? Number(value) : NaN;
  if (!(ms >= 100 && ms <= 86_400_000)) {
    throw new UsageError(`--${flag} is a whole number from 100 to 86400000, not ${value}`, HINT);
  }
  return ms;
}

function parseInterval(value: string | undefined): number {
  if (value === undefined) return DEFAULT_HEALTH_INTERVAL_MS;
  const ms = /^\d{1,9}$/.test(value) ? Number(value) : NaN;
  if (!(ms >= 10 && ms <= 86_400_000)) {
    throw new UsageError(`--health-interval-ms is a whole number from 10 to 86400000, not ${value}`, HINT);
  }
  return ms;
}

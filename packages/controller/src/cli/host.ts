// `hostfiles host add|repin|set-url|list|check` (drain and remove: host-retire.ts).
import { isAgentCallError } from '../agents/agent-error.js';
import { isFlowError, type FlowDeps } from '../flows/deps.js';
import type { RepinReport } from '../flows/index.js';
import { isStoreError } from '../store/errors.js';
import type { Host } from '../store/index.js';
import { firstArg, type Command } from './command.js';
import { CliError } from './errors.js';
import { formatTime, table } from './output.js';

const transport = (host: Host): string =>
  host.certificate !== null ? 'tls pinned' : host.url.startsWith('https:') ? 'tls (system CAs)' : 'plain http';
const hostRow = (host: Host): string[] => [
  host.name,
  host.state,
  host.url,
  transport(host),
  host.uuid,
  host.keyId,
  formatTime(host.lastSeenAt),
];
const HOST_HEADERS = ['NAME', 'STATE', 'URL', 'TRANSPORT', 'UUID', 'AGENT KEY', 'LAST SEEN'];

const TRUST_FLAGS = [
  {
    name: 'expect-key',
    value: 'KEY',
    help: "the agent's public key (base64) or sha256:… fingerprint, as `hostfiles-agent info` prints it on the host",
  },
  { name: 'trust-on-first-use', help: 'pin whatever key the agent presents, checked against nothing (loudly)' },
];

export const HOST_COMMANDS: readonly Command[] = [
  {
    words: ['host', 'add'],
    args: [
      { name: 'NAME', arity: 'one' },
      { name: 'URL', arity: 'one' },
    ],
    flags: [
      ...TRUST_FLAGS,
      { name: 'allow-plain-http', help: 'allow an http:// URL that is not loopback (state and commands in clear)' },
    ],
    summary: "add a host: pin its agent's key, host uuid and TLS certificate",
    details: [
      "URL is the agent's base URL, e.g. https://kvm-01:7441. The agent must answer now, and trust this controller's",
      'key (its trustedKeys): it closes TLS connections from any other.',
      '--expect-key KEY: the key read on the host (`hostfiles-agent info --config FILE`). The certificate the agent',
      'presents, the key its /v1/info names and KEY must be one key, or the host is refused and nothing is stored.',
      'A 16-hex keyId is refused: too short to pin a key.',
      '--trust-on-first-use instead pins whatever the agent presents, and prints the fingerprint to check on the host.',
      'http:// is for loopback agents; to another address only with --allow-plain-http.',
    ].join('\n'),
    async run(ctx, input) {
      const [name = '', url = ''] = input.args;
      const expectKey = input.string('expect-key');
      const trustOnFirstUse = input.bool('trust-on-first-use');
      const { checkTrust, pinned, warnFirstUse } = await import('./host-trust.js');
      checkTrust('host add', expectKey, trustOnFirstUse);
      const { addHost } = await import('../flows/index.js');
      const deps = await ctx.flows();
      let host: Host;
      try {
        host = await addHost(deps, {
          name,
          url,
          ...(expectKey === undefined ? {} : { expectKey }),
          trustOnFirstUse,
          allowPlainHttp: input.bool('allow-plain-http'),
        });
      } catch (error) {
        if (isAgentCallError(error)) {
          throw new CliError(`cannot reach the agent at ${url}: ${error.failure}: ${error.message}`, { cause: error });
        }
        if (isStoreError(error, 'conflict')) throw await hostConflict(deps, name, error);
        throw error;
      }
      if (trustOnFirstUse) warnFirstUse(ctx.io.stderr, host);
      ctx.print(host, () => `added host ${host.name} (${host.uuid}) at ${host.url}; ${pinned(host)}`);
    },
  },
  {
    words: ['host', 'repin'],
    args: [{ name: 'HOST', arity: 'one' }],
    // No --trust-on-first-use: a key that changed is exactly what a man in the middle looks like.
    flags: TRUST_FLAGS.filter((flag) => flag.name === 'expect-key').map((flag) => ({ ...flag, required: true })),
    summary: "pin the key an agent holds now, after it was regenerated (its uuid and URL stay the host's)",
    details: [
      'An agent whose key was regenerated (a lost key file, a reinstall keeping its config) is refused by every call',
      "(host_key_changed). This asks the agent at the host's URL for its certificate and /v1/info, checks them as",
      '`host add` does against --expect-key KEY (read on the host: `hostfiles-agent info --config FILE`), checks it is',
      'the same host (its hostUuid), then pins the new key and certificate and marks the host Connected. It is',
      'journaled (host.repin, see `hostfiles ops list`).',
      'Refused with host_key_mismatch (exit 1, nothing stored) when the agent holds another key than KEY, or answers',
      'as another host. --expect-key is required: a key that changed is exactly what a man in the middle presents, so',
      'repin never pins whatever answers (the hostUuid check is no authentication: the uuid is no secret).',
    ].join('\n'),
    async run(ctx, input) {
      const ref = firstArg(input);
      // Required: the parser refused the command without it (its help says where to read the key).
      const expectKey = input.required('expect-key');
      const { checkTrust } = await import('./host-trust.js');
      checkTrust('host repin', expectKey, false);
      const { repinHost } = await import('../flows/index.js');
      const deps = await ctx.flows();
      let report: RepinReport;
      try {
        report = await repinHost(deps, ref, { expectKey, trustOnFirstUse: false });
      } catch (error) {
        if (isAgentCallError(error)) {
          throw new CliError(`cannot reach the agent of ${ref}: ${error.failure}: ${error.message}`, { cause: error });
        }
        if (isFlowError(error) && error.code === 'host_key_mismatch') {
          throw new CliError(`host_key_mismatch: ${error.message}`, { cause: error });
        }
        throw error;
      }
      ctx.print(report, () =>
        report.previous === report.pinned
          ? `host ${report.hostName}: its agent still holds ${report.pinned}; pinned again (operation ${report.operationId})`
          : `host ${report.hostName} (${report.hostUuid}) re-pinned: agent key ${report.pinned}` +
            `${report.tls ? ', with its TLS certificate' : ''} (was ${report.previous}; operation ${report.operationId})`,
      );
    },
  },
  {
    words: ['host', 'set-url'],
    args: [
      { name: 'NAME', arity: 'one' },
      { name: 'URL', arity: 'one' },
    ],
    flags: [
      { name: 'allow-plain-http', help: 'allow an http:// URL that is not loopback (state and commands in clear)' },
    ],
    summary: "point a host at another URL (e.g. https:// once its agent serves TLS), pinning the agent's certificate",
    details: [
      'The agent at URL must hold the key and host uuid pinned for the host: its certificate is then pinned.',
      'Hosts added before TLS have an http:// URL and no certificate: this moves them to https://.',
    ].join('\n'),
    async run(ctx, input) {
      const [name = '', url = ''] = input.args;
      const { setHostUrl } = await import('../flows/index.js');
      const { pinned } = await import('./host-trust.js');
      const deps = await ctx.flows();
      const host = await setHostUrl(deps, name, { url, allowPlainHttp: input.bool('allow-plain-http') });
      ctx.print(host, () => `host ${host.name} is now at ${host.url}; ${pinned(host)}`);
    },
  },
  {
    words: ['host', 'list'],
    args: [],
    flags: [],
    summary: 'list the hosts, their state and pinned agent key',
    async run(ctx) {
      const hosts = await (await ctx.store()).listHosts();
      ctx.print(hosts, () => (hosts.length === 0 ? 'no hosts' : table(HOST_HEADERS, hosts.map(hostRow))));
    },
  },
  {
    words: ['host', 'check'],
    args: [],
    flags: [],
    summary: 'health-check every host and record it Connected or Disconnected',
    details: [
      'Asks every agent for /v1/info. A host that does not answer is Disconnected (exit 0: that is a state), and',
      'WHY says what the call met (unreachable, timeout, refused, ...).',
      'A host answering with another key or uuid than the one pinned is refused and marked Disconnected,',
      'and the command exits 1.',
    ].join('\n'),
    async run(ctx) {
      const deps = await ctx.flows();
      const checks = await checkAll(deps, await deps.store.listHosts());
      ctx.print(checks, () =>
        checks.length === 0
          ? 'no hosts'
          : [
              table(
                ['NAME', 'STATE', 'WAS', 'URL', 'WHY'],
                checks.map((c) => [c.name, c.state, c.previous, c.url, c.error ?? c.reason ?? '']),
              ),
              '',
              summary(checks),
            ].join('\n'),
      );
      const refused = checks.filter((c) => c.error !== undefined);
      if (refused.length > 0) {
        throw new CliError(`refused ${refused.map((c) => c.name).join(', ')}: ${refused[0]?.error ?? ''}`);
      }
    },
  },
];

interface HostCheck {
  readonly name: string;
  readonly uuid: string;
  readonly url: string;
  readonly previous: Host['state'];
  readonly state: Host['state'];
  /** why it is Disconnected: what the call to its agent met */
  readonly reason?: string;
  /** why it was refused (its key or certificate changed) */
  readonly error?: string;
}

async function checkAll(deps: FlowDeps, hosts: readonly Host[]): Promise<HostCheck[]> {
  const [{ checkHost }, { mapLimit }] = await Promise.all([import('../flows/index.js'), import('@hostfiles/shared')]);
  let done = 0;
  return mapLimit(hosts, deps.concurrency, async (host) => {
    const base = { name: host.name, uuid: host.uuid, url: host.url, previous: host.state };
    let check: HostCheck;
    try {
      // What the check recorded and why; how recover reads the failure (silent, timedOut, refused) stays its own.
      const { state, reason } = await checkHost(deps, host);
      check = { ...base, state, ...(reason === undefined ? {} : { reason }) };
    } catch (error) {
      if (!isFlowError(error)) throw error;
      check = { ...base, state: 'Disconnected', error: error.message };
    }
    deps.onProgress?.({ flow: 'host.check', done: ++done, total: hosts.length, host: host.name });
    return check;
  });
}

/** The counts, each followed by the hosts it counts and why, so no count stands without its reasons. */
function summary(checks: readonly HostCheck[]): string {
  const down = checks.filter((c) => c.state === 'Disconnected');
  const lines = [`${checks.length - down.length} connected, ${down.length} disconnected`];
  for (const c of down) lines.push(`  ${c.name} (${c.uuid}): ${c.error ?? c.reason ?? 'no reason recorded'}`);
  return lines.join('\n');
}

async function hostConflict(deps: FlowDeps, name: string, cause: unknown): Promise<CliError> {
  const taken = (await deps.store.getHostByName(name)) !== null;
  return new CliError(
    taken
      ? `a host named ${name} exists already`
      : 'this agent is in the inventory already, under another name (its host uuid is pinned there)',
    { cause },
  );
}

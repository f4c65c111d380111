// `hostfiles host add|list|remove|check`.
import { mapLimit } from '@hostfiles/shared';
import { isAgentCallError } from '../agents/index.js';
import { addHost, checkHost, isFlowError, type FlowDeps } from '../flows/index.js';
import { isStoreError, type Host } from '../store/index.js';
import { firstArg, type Command } from './command.js';
import { CliError } from './errors.js';
import { findHost } from './lookup.js';
import { formatTime, table } from './output.js';

const hostRow = (host: Host): string[] => [
  host.name,
  host.state,
  host.url,
  host.uuid,
  host.keyId,
  formatTime(host.lastSeenAt),
];
const HOST_HEADERS = ['NAME', 'STATE', 'URL', 'UUID', 'AGENT KEY', 'LAST SEEN'];

export const HOST_COMMANDS: readonly Command[] = [
  {
    words: ['host', 'add'],
    args: [
      { name: 'NAME', arity: 'one' },
      { name: 'URL', arity: 'one' },
    ],
    flags: [],
    summary: "add a host: fetch its agent's /v1/info and pin the agent's key and host uuid",
    details: "URL is the agent's base URL, e.g. http://kvm-01:7441. The agent must answer now.",
    async run(ctx, input) {
      const [name = '', url = ''] = input.args;
      const deps = await ctx.flows();
      let host: Host;
      try {
        host = await addHost(deps, { name, url });
      } catch (error) {
        if (isAgentCallError(error)) {
          throw new CliError(`cannot reach the agent at ${url}: ${error.failure}: ${error.message}`, { cause: error });
        }
        if (isStoreError(error, 'conflict')) throw await hostConflict(deps, name, error);
        throw error;
      }
      ctx.print(host, () => `added host ${host.name} (${host.uuid}) at ${host.url}; agent key ${host.keyId} pinned`);
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
    words: ['host', 'remove'],
    args: [{ name: 'NAME', arity: 'one' }],
    flags: [],
    summary: 'remove a host that no VM, file or pending deletion names any more',
    async run(ctx, input) {
      const store = await ctx.store();
      const host = await findHost(store, firstArg(input));
      try {
        await store.removeHost(host.uuid);
      } catch (error) {
        if (!isStoreError(error, 'constraint')) throw error;
        throw new CliError(
          `host ${host.name} is still named by VMs, files or pending deletions: move or remove them first`,
          { cause: error },
        );
      }
      ctx.print({ removed: host }, () => `removed host ${host.name} (${host.uuid})`);
    },
  },
  {
    words: ['host', 'check'],
    args: [],
    flags: [],
    summary: 'health-check every host and record it Connected or Disconnected',
    details: [
      'Asks every agent for /v1/info. A host that does not answer is Disconnected (exit 0: that is a state).',
      'A host answering with another key or uuid than the one pinned is refused and marked Disconnected,',
      'and the command exits 1.',
    ].join('\n'),
    async run(ctx) {
      const deps = await ctx.flows();
      const checks = await checkAll(deps, await deps.store.listHosts());
      ctx.print(checks, () =>
        checks.length === 0
          ? 'no hosts'
          : table(
              ['NAME', 'STATE', 'WAS', 'URL', 'ERROR'],
              checks.map((c) => [c.name, c.state, c.previous, c.url, c.error ?? '']),
            ),
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
  readonly error?: string;
}

async function checkAll(deps: FlowDeps, hosts: readonly Host[]): Promise<HostCheck[]> {
  let done = 0;
  return mapLimit(hosts, deps.concurrency, async (host) => {
    const base = { name: host.name, uuid: host.uuid, url: host.url, previous: host.state };
    let check: HostCheck;
    try {
      check = { ...base, state: await checkHost(deps, host) };
    } catch (error) {
      if (!isFlowError(error)) throw error;
      check = { ...base, state: 'Disconnected', error: error.message };
    }
    deps.onProgress?.({ flow: 'host.check', done: ++done, total: hosts.length, host: host.name });
    return check;
  });
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

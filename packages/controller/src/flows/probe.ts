// Before a removal or a destruction: is any of the states to delete in use (a running swtpm's lock, a QEMU holding
// its NVRAM)? Asked with one `files.busy` per host (up to MAX_OPS states each), hosts at once: the agent looks at the
// locks without reading a file (a `files.stat` would digest every one: 64 MiB per AAVMF store). An agent older than
// `files.busy` answers 404 not_found: it is asked with `files.stat` instead. A host that cannot say is not in the way (its agent
// refuses a busy delete anyway): its states are left pending without a second wait for it (see `Probe.down`).
import { mapLimit, MAX_OPS } from '@hostfiles/shared';
import { isAgentCallError } from '../agents/index.js';
import type { Host, VmHostFile } from '../store/index.js';
import { bytesOf } from './bytes-of.js';
import { FlowError, type FlowDeps } from './deps.js';
import { markHost, markUnreachable } from './host-state.js';
import { groupBy } from './group-by.js';

export interface BusyState {
  readonly vmUuid: string;
  readonly hostUuid: string;
  readonly hostName: string;
  readonly path: string;
}

export interface Probe {
  readonly busy: readonly BusyState[];
  /** hosts that did not answer the probe, and why: a dispatch leaves their states pending at once */
  readonly down: ReadonlyMap<string, string>;
}

/** The states among `files` whose host says a lock is held on them, and the hosts that could not say. */
export async function probeStates(deps: FlowDeps, files: readonly VmHostFile[]): Promise<Probe> {
  const byHost = groupBy(files, (file) => file.hostUuid);
  const down = new Map<string, string>();
  const perHost = await mapLimit([...byHost.entries()], deps.concurrency, async ([hostUuid, rows]) => {
    const host = await deps.store.getHost(hostUuid);
    if (host === null) return [];
    const busy: BusyState[] = [];
    for (let start = 0; start < rows.length; start += MAX_OPS) {
      const chunk = rows.slice(start, start + MAX_OPS);
      const answer = await statOn(deps, host, chunk);
      if (typeof answer === 'string') {
        down.set(hostUuid, answer);
        return busy;
      }
      chunk.forEach((row, i) => {
        const result = answer[i];
        if (result?.status === 'present' && result.path === row.path && result.busy) {
          busy.push({ vmUuid: row.vmUuid, hostUuid, hostName: host.name, path: row.path });
        }
      });
    }
    return busy;
  });
  return { busy: perHost.flat(), down };
}

/** The busy results, or why the host could not answer (and the host marked as a dispatch would mark it). */
async function statOn(deps: FlowDeps, host: Host, rows: readonly VmHostFile[]) {
  const files = rows.map(({ type, path }) => ({ type, path }));
  try {
    const results = await deps.agents.send(host, 'files.busy', { files }).then(
      (answer) => answer.results,
      async (error: unknown) => {
        if (!isAgentCallError(error) || error.details.status !== 404 || error.details.agentCode !== 'not_found') {
          throw error;
        }
        // An agent from before files.busy: stat hashes each state, and is given the time that takes.
        return (await deps.agents.send(host, 'files.stat', { files }, { bytes: bytesOf(rows) })).results;
      },
    );
    await markHost(deps, host, 'Connected');
    return results;
  } catch (error) {
    if (!isAgentCallError(error)) throw error;
    await markUnreachable(deps, host, error);
    return `${error.failure}: ${error.message}`;
  }
}

/**
 * Refuses (FlowError 'busy') when any of the states is in use, unless forced; answers the hosts that could not be
 * asked (none when forced: nothing was asked).
 */
export async function refuseBusy(
  deps: FlowDeps,
  files: readonly VmHostFile[],
  force: boolean,
  names: (vmUuid: string) => string,
): Promise<ReadonlyMap<string, string>> {
  if (force || files.length === 0) return new Map();
  const { busy, down } = await probeStates(deps, files);
  if (busy.length === 0) return down;
  const list = busy.map((b) => `VM ${names(b.vmUuid)} on ${b.hostName} (${b.path})`).join(', ');
  throw new FlowError(
    'busy',
    `in use by a running swtpm or QEMU: ${list}. Stop the VM first, or force it: the deletion then waits in the ` +
      'outbox until the lock is released',
  );
}

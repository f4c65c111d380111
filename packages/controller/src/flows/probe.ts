// Before a removal or a destruction: is any of the states to delete in use (a running swtpm's lock, a QEMU holding
// its NVRAM)? Asked with one `files.stat` per host; a host that cannot say is not in the way (its agent refuses a
// busy delete anyway, and the deletion then waits in the outbox).
import { mapLimit, MAX_OPS } from '@hostfiles/shared';
import { isAgentCallError } from '../agents/index.js';
import type { VmHostFile } from '../store/index.js';
import { FlowError, type FlowDeps } from './deps.js';

export interface BusyState {
  readonly vmUuid: string;
  readonly hostUuid: string;
  readonly hostName: string;
  readonly path: string;
}

/** The states among `files` whose host says a lock is held on them. */
export async function busyStates(deps: FlowDeps, files: readonly VmHostFile[]): Promise<BusyState[]> {
  const byHost = new Map<string, VmHostFile[]>();
  for (const file of files) byHost.set(file.hostUuid, [...(byHost.get(file.hostUuid) ?? []), file]);
  const perHost = await mapLimit([...byHost.entries()], deps.concurrency, async ([hostUuid, rows]) => {
    const host = await deps.store.getHost(hostUuid);
    if (host === null) return [];
    const busy: BusyState[] = [];
    for (let start = 0; start < rows.length; start += MAX_OPS) {
      const chunk = rows.slice(start, start + MAX_OPS);
      try {
        const answer = await deps.agents.send(host, 'files.stat', {
          files: chunk.map(({ type, path }) => ({ type, path })),
        });
        chunk.forEach((row, i) => {
          const result = answer.results[i];
          if (result?.status === 'present' && result.path === row.path && result.busy) {
            busy.push({ vmUuid: row.vmUuid, hostUuid, hostName: host.name, path: row.path });
          }
        });
      } catch (error) {
        if (!isAgentCallError(error)) throw error;
        return busy;
      }
    }
    return busy;
  });
  return perHost.flat();
}

/** Refuses (FlowError 'busy') when any of the states is in use, unless forced. */
export async function refuseBusy(
  deps: FlowDeps,
  files: readonly VmHostFile[],
  force: boolean,
  names: (vmUuid: string) => string,
): Promise<void> {
  if (force || files.length === 0) return;
  const busy = await busyStates(deps, files);
  if (busy.length === 0) return;
  const list = busy.map((b) => `VM ${names(b.vmUuid)} on ${b.hostName} (${b.path})`).join(', ');
  throw new FlowError(
    'busy',
    `in use by a running swtpm or QEMU: ${list}. Stop the VM first, or force it: the deletion then waits in the ` +
      'outbox until the lock is released',
  );
}

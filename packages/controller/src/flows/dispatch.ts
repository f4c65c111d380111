// Step 3 of every removal: one signed command per host, hosts reached with bounded concurrency, best-effort.
// A host that is down, slow, or answers an error never stops the others; each file ends confirmed or not.
import { deleteOp, mapLimit, MAX_OPS, type ApplyOp, type ApplyResult, type FileType } from '@hostfiles/shared';
import { isAgentCallError } from '../agents/index.js';
import type { Host } from '../store/index.js';
import type { FlowDeps } from './deps.js';
import { markHost, markUnreachable } from './host-state.js';
import { groupBy } from './group-by.js';

export interface HostFile {
  readonly hostUuid: string;
  readonly type: FileType;
  readonly path: string;
  /** delete only while the path holds this digest (a guard, an orphan as reconcile saw it) */
  readonly expect?: string;
}

/**
 * `deleted`/`absent`: gone. `changed`: a conditional deletion found other state there, which is not ours to delete
 * (nothing was deleted). `unconfirmed`: anything else (down, busy, refused): still to do.
 */
export type DeleteOutcome =
  | { readonly status: 'deleted' | 'absent' }
  | { readonly status: 'changed' | 'unconfirmed'; readonly reason: string }
  // A dry run's: the deletion this file would get; nothing was sent.
  | { readonly status: 'planned' };

export type FileOutcome = Pick<HostFile, 'hostUuid' | 'type' | 'path'> & DeleteOutcome;

export interface HostReport {
  readonly hostUuid: string;
  readonly hostName: string;
  readonly commands: number;
  /** why the host could not be reached or refused, if it did */
  readonly error?: string;
  readonly files: readonly FileOutcome[];
}

/**
 * What `deleteOnHosts` would send, sent nowhere: per host, the files (each 'planned') and how many commands it would
 * take. A dry run's dispatch.
 */
export async function planOnHosts(deps: FlowDeps, files: readonly HostFile[]): Promise<HostReport[]> {
  const byHost = groupBy(files, (file) => file.hostUuid);
  return Promise.all(
    [...byHost.entries()].map(async ([hostUuid, hostFiles]) => ({
      hostUuid,
      hostName: (await deps.store.getHost(hostUuid))?.name ?? hostUuid,
      commands: Math.ceil(hostFiles.length / MAX_OPS),
      files: hostFiles.map((file) => ({ ...where(file), status: 'planned' as const })),
    })),
  );
}

/**
 * Deletes the files, grouped per host; answers one report per host, files in the order given. A host in `down` (it
 * just failed to answer, e.g. the busy probe) is not asked again: its files are unconfirmed with that reason.
 */
export async function deleteOnHosts(
  deps: FlowDeps,
  files: readonly HostFile[],
  flow: string,
  down: ReadonlyMap<string, string> = new Map(),
): Promise<HostReport[]> {
  const byHost = groupBy(files, (file) => file.hostUuid);
  const hosts = await Promise.all([...byHost.keys()].map((uuid) => deps.store.getHost(uuid)));
  let done = 0;
  const reports = await mapLimit([...byHost.entries()], deps.concurrency, async ([hostUuid, hostFiles], index) => {
    const report = await deleteOnHost(deps, hosts[index] ?? null, hostUuid, hostFiles, down.get(hostUuid));
    done++;
    deps.onProgress?.({ flow, done, total: byHost.size, host: report.hostName });
    return report;
  });
  return reports;
}

async function deleteOnHost(
  deps: FlowDeps,
  host: Host | null,
  hostUuid: string,
  files: readonly HostFile[],
  downBecause: string | undefined,
): Promise<HostReport> {
  const unconfirmed = (reason: string): HostReport => ({
    hostUuid,
    hostName: host?.name ?? hostUuid,
    commands: 0,
    error: reason,
    files: files.map((file) => ({ ...where(file), status: 'unconfirmed', reason })),
  });
  if (host === null) return unconfirmed('the host is not in the inventory');
  if (downBecause !== undefined) return unconfirmed(downBecause);
  const results: FileOutcome[] = [];
  let commands = 0;
  // More than MAX_OPS files on one host take more than one command; deletes carry no content, so size is no issue.
  for (let start = 0; start < files.length; start += MAX_OPS) {
    const chunk = files.slice(start, start + MAX_OPS);
    const ops: ApplyOp[] = chunk.map((file) => deleteOp(file.type, file.path, file.expect));
    commands++;
    try {
      const answer = await deps.agents.send(host, 'files.apply', { ops });
      await markSeen(deps, host);
      chunk.forEach((file, i) => results.push({ ...where(file), ...outcomeOf(file, answer.results[i]) }));
    } catch (error) {
      if (!isAgentCallError(error)) throw error;
      await markUnreachable(deps, host, error);
      const reason = `${error.failure}: ${error.message}`;
      for (const file of files.slice(start)) results.push({ ...where(file), status: 'unconfirmed', reason });
      return { hostUuid, hostName: host.name, commands, error: reason, files: results };
    }
  }
  return { hostUuid, hostName: host.name, commands, files: results };
}

const where = ({ hostUuid, type, path }: HostFile): Pick<HostFile, 'hostUuid' | 'type' | 'path'> => ({
  hostUuid,
  type,
  path,
});

function outcomeOf(file: HostFile, result: ApplyResult | undefined): DeleteOutcome {
  if (result === undefined || result.path !== file.path) return { status: 'unconfirmed', reason: 'no result' };
  if (result.status === 'deleted' || result.status === 'absent') return { status: result.status };
  const reason = result.error ? `${result.error.code}: ${result.error.message}` : 'not deleted';
  return file.expect !== undefined && result.error?.code === 'changed'
    ? { status: 'changed', reason }
    : { status: 'unconfirmed', reason };
}

async function markSeen(deps: FlowDeps, host: Host): Promise<void> {
  await markHost(deps, host, 'Connected');
}

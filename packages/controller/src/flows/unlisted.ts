// The recorded states a host's listing did not show by their own path, looked at one by one: fleet sync and reconcile
// both read a listing this way.
import { MAX_OPS, type ListEntry, type StatResult } from '@hostfiles/shared';
import type { SendOptions } from '../agents/index.js';
import type { Host, VmHostFile } from '../store/index.js';
import { bytesOf } from './bytes-of.js';
import type { FlowDeps } from './deps.js';

/**
 * Stats (`files.stat`, MAX_OPS states a command, each attempt given the time its states' bytes take) the recorded
 * `rows` the listing shows not by their own path: those below a listed state (the listing stops at states), and after
 * a truncated listing every one (what it left out is not known to be absent). `options` is every command's too;
 * `onCommand` hears of each command once answered.
 */
export async function statUnlisted(
  deps: FlowDeps,
  host: Host,
  rows: readonly VmHostFile[],
  listing: { readonly results: readonly ListEntry[]; readonly truncated?: boolean | undefined },
  options: SendOptions = {},
  onCommand: () => void = () => undefined,
): Promise<ReadonlyMap<string, StatResult>> {
  const exact = new Set(listing.results.map((unit) => unit.path));
  const truncated = listing.truncated === true;
  const unlisted = rows.filter((row) => !exact.has(row.path) && (truncated || hasAncestorIn(row.path, exact)));
  const found = new Map<string, StatResult>();
  for (let start = 0; start < unlisted.length; start += MAX_OPS) {
    const chunk = unlisted.slice(start, start + MAX_OPS);
    const files = chunk.map(({ type, path }) => ({ type, path }));
    const answer = await deps.agents.send(host, 'files.stat', { files }, { ...options, bytes: bytesOf(chunk) });
    for (const result of answer.results) found.set(result.path, result);
    onCommand();
  }
  return found;
}

/** Whether a directory above `path` is in `paths` (a set: a fleet host may hold thousands of states). */
function hasAncestorIn(path: string, paths: ReadonlySet<string>): boolean {
  for (let cut = path.lastIndexOf('/'); cut > 0; cut = path.lastIndexOf('/', cut - 1)) {
    if (paths.has(path.slice(0, cut))) return true;
  }
  return false;
}

// Check 9 of files.read, files.list, files.stat and files.busy (paths only) and their execution.
import {
  ANSWER_WITHIN_HEADER,
  err,
  MAX_ANSWER_WITHIN_MS,
  mapLimit,
  ok,
  protocolError,
  type ListCommand,
  type ProtocolError,
  type ReadCommand,
  type ReadResult,
  type Result,
  type BusyCommand,
  type BusyResult,
  type StatCommand,
  type StatResult,
} from '@hostfiles/shared';
import type { AppDeps } from '../deps.js';
import { ANSWER_FULL_MESSAGE, listBudget } from '../files/index.js';
import { confine, type Target } from './files.js';
import type { Prepared } from './signed.js';

/**
 * The most characters of JSON the states one read answer carries take (their contents, names, digests and sizes):
 * 160 MiB, so that its signed envelope (the answer's JSON, base64 again: 4/3 of it) stays under what a controller
 * reads of an answer (MAX_ANSWER_BYTES, 256 MiB), with room for the states refused as not fitting (each a path and a
 * sentence). A larger answer could never be read: the controller would refuse it whole, and every state in that read
 * with it (the 384 MiB of content of earlier releases made envelopes of up to 512 MiB, past even V8's longest
 * string). States past it answer `io_error`, to be read in another command.
 */
export const MAX_READ_CONTENT_CHARS = 160 * 1024 * 1024;

function confineAll(deps: AppDeps, files: ReadCommand['files']): Result<Target[], ProtocolError> {
  const targets: Target[] = [];
  for (const [index, file] of files.entries()) {
    const target = confine(deps, file.type, file.path, index);
    if (!target.ok) return target;
    targets.push(target.value);
  }
  return ok(targets);
}

export function prepareRead(deps: AppDeps, command: ReadCommand): Result<Prepared, ProtocolError> {
  const targets = confineAll(deps, command.files);
  if (!targets.ok) return targets;
  return ok({
    storeAnswer: false,
    execute: async () => {
      const results: ReadResult[] = [];
      let chars = 0;
      for (const { type, path, components } of targets.value) {
        // What is left of the answer: a read that would not fit stops as soon as it knows, and says so.
        const read = await deps.files.read(type, components, MAX_READ_CONTENT_CHARS - chars);
        const result: ReadResult = { op: 'read', type, path, ...read };
        const size = answerChars(result);
        if (chars + size > MAX_READ_CONTENT_CHARS) {
          results.push({ op: 'read', type, path, status: 'failed', error: ANSWER_FULL });
          continue;
        }
        chars += size;
        results.push(result);
      }
      return { requestId: command.requestId, hostUuid: deps.hostUuid, kind: 'files.read', results };
    },
  });
}

const ANSWER_FULL = { code: 'io_error', message: ANSWER_FULL_MESSAGE } as const;

/**
 * The characters `result` takes in the answer's JSON: its contents, and everything else too (paths, digests, sizes):
 * a directory of 1,000 entries with long names weighs megabytes without a byte of content. Only the small parts
 * are serialized to count them, never the contents.
 */
function answerChars(result: ReadResult): number {
  if (result.status !== 'read') return JSON.stringify(result).length;
  if (result.kind === 'file') return JSON.stringify({ ...result, content: '' }).length + result.content.length;
  const entries = result.entries.map((entry) => ({ ...entry, content: '' }));
  const contents = result.entries.reduce((sum, entry) => sum + entry.content.length, 0);
  return JSON.stringify({ ...result, entries }).length + contents;
}

/**
 * `signal`: aborted once the request's connection closed (the controller gave up): the listing stops hashing.
 * `within`: the request's ANSWER_WITHIN_HEADER, if it has one: the listing answers within that many milliseconds.
 */
export function prepareList(
  deps: AppDeps,
  command: ListCommand,
  signal?: AbortSignal,
  within?: string,
): Result<Prepared, ProtocolError> {
  const withinMs = within === undefined ? undefined : answerWithinMs(within);
  if (withinMs === null) {
    return err(
      protocolError('bad_request', `${ANSWER_WITHIN_HEADER} must be whole milliseconds, 1 to ${MAX_ANSWER_WITHIN_MS}`),
    );
  }
  return ok({
    storeAnswer: false,
    execute: async () => {
      // One budget for the listing's roots together: what the roots' owners can make it read is bounded, and so is
      // the time it may take when the controller said how long it waits.
      const budget = listBudget({
        ...(signal === undefined ? {} : { signal }),
        ...(withinMs === undefined ? {} : { withinMs }),
      });
      let lists;
      try {
        lists = await Promise.all(command.types.map((type) => deps.files.list(type, budget)));
      } finally {
        budget.finish();
      }
      const results = lists.flat().sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
      return {
        requestId: command.requestId,
        hostUuid: deps.hostUuid,
        kind: 'files.list',
        roots: rootsOf(deps),
        results,
        ...(budget.truncated ? { truncated: true as const } : {}),
      };
    },
  });
}

/** ANSWER_WITHIN_HEADER's value as a number of milliseconds, or null when it is not one the agent takes. */
function answerWithinMs(text: string): number | null {
  if (!/^[1-9][0-9]{0,7}$/.test(text)) return null;
  const ms = Number(text);
  return ms <= MAX_ANSWER_WITHIN_MS ? ms : null;
}

export function prepareStat(deps: AppDeps, command: StatCommand): Result<Prepared, ProtocolError> {
  const targets = confineAll(deps, command.files);
  if (!targets.ok) return targets;
  return ok({
    storeAnswer: false,
    execute: async () => {
      const results: StatResult[] = [];
      for (const { type, path, components } of targets.value) {
        results.push({ type, path, ...(await deps.files.stat(type, components)) });
      }
      return {
        requestId: command.requestId,
        hostUuid: deps.hostUuid,
        kind: 'files.stat',
        roots: rootsOf(deps),
        results,
      };
    },
  });
}

/** As the ops of one batch (files/apply): how many states one probe looks at at once. */
const BUSY_PARALLEL = 8;

export function prepareBusy(deps: AppDeps, command: BusyCommand): Result<Prepared, ProtocolError> {
  const targets = confineAll(deps, command.files);
  if (!targets.ok) return targets;
  return ok({
    storeAnswer: false,
    execute: async () => {
      // 8 at a time, as a batch's ops: each waits only on its own unit's lock, and their /proc/locks reads are shared
      // (locks.ts), so a probe of many states costs a few reads, not one each.
      const results: BusyResult[] = await mapLimit(
        targets.value,
        BUSY_PARALLEL,
        async ({ type, path, components }) => ({
          type,
          path,
          ...(await deps.files.busy(type, components)),
        }),
      );
      return { requestId: command.requestId, hostUuid: deps.hostUuid, kind: 'files.busy', results };
    },
  });
}

/** Exactly the two roots, whatever else the object handed in holds. */
const rootsOf = (deps: AppDeps): { TpmState: string; NvRam: string } => ({
  TpmState: deps.roots.TpmState,
  NvRam: deps.roots.NvRam,
});

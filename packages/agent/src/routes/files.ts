// Check 9 and the execution of each signed command kind.
import { createHash } from 'node:crypto';
import {
  confinePath,
  err,
  mapLimit,
  ok,
  protocolError,
  type ApplyCommand,
  type ApplyOp,
  type ApplyResult,
  type FileType,
  type ListCommand,
  type ReadCommand,
  type ReadResult,
  type Result,
  type ProtocolError,
} from '@hostfiles/shared';
import type { AppDeps } from '../deps.js';
import type { Prepared } from './signed.js';

interface Target {
  readonly type: FileType;
  readonly path: string;
  readonly components: readonly string[];
}

function confine(deps: AppDeps, type: FileType, path: string, index: number): Result<Target, ProtocolError> {
  const confined = confinePath(path, deps.roots[type]);
  if (!confined.ok) return err(protocolError('outside_root', `item ${index}: ${confined.error}`));
  return ok({ type, path, components: confined.value });
}

export function prepareApply(deps: AppDeps, command: ApplyCommand): Result<Prepared, ProtocolError> {
  const steps: (() => Promise<ApplyResult>)[] = [];
  for (const [index, op] of command.ops.entries()) {
    const target = confine(deps, op.type, op.path, index);
    if (!target.ok) return target;
    const { type, path, components } = target.value;
    if (op.op === 'write') {
      const content = Buffer.from(op.content, 'base64');
      if (createHash('sha256').update(content).digest('hex') !== op.sha256) {
        return err(protocolError('bad_request', `item ${index}: sha256 does not match the content`));
      }
      steps.push(async () => ({ op: 'write', type, path, ...(await deps.files.write(type, components, content)) }));
    } else {
      steps.push(async () => ({ op: 'delete', type, path, ...(await deps.files.remove(type, components)) }));
    }
  }
  const log = deps.logger.child({ requestId: command.requestId });
  return ok({
    storeAnswer: true,
    execute: async () => {
      // Ops that can't see each other run a few at once, which overlaps their fsyncs; otherwise strictly in order.
      // Results are in op order either way.
      const limit = independent(command.ops) ? PARALLEL_OPS : 1;
      const results = await mapLimit(steps, limit, async (step): Promise<ApplyResult> => {
        const result = await step();
        log.info('op', {
          op: result.op,
          type: result.type,
          path: result.path,
          status: result.status,
          code: result.error?.code,
        });
        return result;
      });
      return { requestId: command.requestId, hostUuid: deps.hostUuid, kind: 'files.apply', results };
    },
  });
}

/** How many ops of one batch run at once when their paths are independent. */
const PARALLEL_OPS = 8;

/**
 * Ops can run at once when they are all of one kind (a delete's pruning never races a write's mkdir), no path
 * equals or lies below another, and no two share a directory (no two prune or fill the same one).
 */
export function independent(ops: readonly ApplyOp[]): boolean {
  if (ops.some((op) => op.op !== ops[0]?.op)) return false;
  const parents = new Set(ops.map((op) => op.path.slice(0, op.path.lastIndexOf('/'))));
  if (parents.size !== ops.length) return false;
  const sorted = ops.map((op) => op.path).sort();
  for (let i = 1; i < sorted.length; i++) {
    const previous = sorted[i - 1] ?? '';
    const current = sorted[i] ?? '';
    if (current.startsWith(`${previous}/`)) return false;
  }
  return true;
}

export function prepareRead(deps: AppDeps, command: ReadCommand): Result<Prepared, ProtocolError> {
  const targets: Target[] = [];
  for (const [index, file] of command.files.entries()) {
    const target = confine(deps, file.type, file.path, index);
    if (!target.ok) return target;
    targets.push(target.value);
  }
  return ok({
    storeAnswer: false,
    execute: async () => {
      const results: ReadResult[] = [];
      for (const { type, path, components } of targets) {
        const read = await deps.files.read(type, components);
        results.push(
          read.status === 'read'
            ? {
                op: 'read',
                type,
                path,
                status: 'read',
                content: read.content.toString('base64'),
                sha256: createHash('sha256').update(read.content).digest('hex'),
              }
            : { op: 'read', type, path, ...read },
        );
      }
      return { requestId: command.requestId, hostUuid: deps.hostUuid, kind: 'files.read', results };
    },
  });
}

export function prepareList(deps: AppDeps, command: ListCommand): Result<Prepared, ProtocolError> {
  return ok({
    storeAnswer: false,
    execute: async () => {
      const lists = await Promise.all(command.types.map((type) => deps.files.list(type)));
      return { requestId: command.requestId, hostUuid: deps.hostUuid, kind: 'files.list', results: lists.flat() };
    },
  });
}

// Check 9 of files.apply and the execution of its ops.
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
  type ProtocolError,
  type Result,
} from '@hostfiles/shared';
import type { AppDeps } from '../deps.js';
import type { OpTiming } from '../files/index.js';
import { NO_METRICS } from '../metrics/agent-metrics.js';
import { checkEntries, decodeWithin, type ContentBudget } from './content.js';
import type { Prepared } from './signed.js';

export interface Target {
  readonly type: FileType;
  readonly path: string;
  readonly components: readonly string[];
}

export function confine(deps: AppDeps, type: FileType, path: string, index: number): Result<Target, ProtocolError> {
  const confined = confinePath(path, deps.roots[type]);
  if (!confined.ok) return err(protocolError('outside_root', `item ${index}: ${confined.error}`));
  return ok({ type, path, components: confined.value });
}

type Step = (timing: OpTiming) => Promise<ApplyResult>;

export function prepareApply(deps: AppDeps, command: ApplyCommand): Result<Prepared, ProtocolError> {
  const budget: ContentBudget = { limit: deps.maxContentBytes, left: deps.maxContentBytes };
  const steps: Step[] = [];
  const targets: Target[] = [];
  for (const [index, op] of command.ops.entries()) {
    const target = confine(deps, op.type, op.path, index);
    if (!target.ok) return target;
    const step = prepareOp(deps, op, target.value, budget, `item ${index}`);
    if (!step.ok) return step;
    steps.push(step.value);
    targets.push(target.value);
  }
  const log = deps.logger.child({ requestId: command.requestId });
  const metrics = deps.metrics ?? NO_METRICS;
  // Past it no agent may apply the command (check 7's bound): an op still waiting then changes nothing (expired).
  const deadline = { at: command.expiresAt + deps.clockSkewMs, now: deps.now };
  return ok({
    storeAnswer: true,
    execute: async (recorded, durable) => {
      // Ops that can't see each other run a few at once, which overlaps their fsyncs; otherwise strictly in order.
      // Results are in op order either way.
      const limit = independent(targets) ? PARALLEL_OPS : 1;
      let failure: { readonly error: unknown } | undefined;
      let taken = 0;
      const results = await mapLimit(steps, limit, async (step): Promise<ApplyResult | undefined> => {
        taken += 1;
        // After an op threw (the record failed, or a bug), no further op begins.
        if (failure !== undefined) return undefined;
        let synced: Promise<void> | undefined;
        try {
          const result = await step({
            gate: recorded,
            deadline,
            onDurable: (done) => {
              synced = done;
              durable(done);
            },
          });
          log.info('op', {
            op: result.op,
            type: result.type,
            path: result.path,
            status: result.status,
            code: result.error?.code,
          });
          metrics.op(result.op, result.error?.code ?? result.status);
          // An op's fsyncs still count among the `limit` at once: while ops are left to take, this worker takes the
          // next only once they are done. Those of the last ops go on past here, alongside the answer's journal line.
          if (synced !== undefined && taken < steps.length) await synced;
          return result;
        } catch (error) {
          failure ??= { error };
          return undefined;
        }
      });
      // Answered only once every op that began has settled, so none is still changing files.
      if (failure !== undefined) throw failure.error;
      return {
        requestId: command.requestId,
        hostUuid: deps.hostUuid,
        kind: 'files.apply',
        results: results as ApplyResult[],
      };
    },
  });
}

function prepareOp(
  deps: AppDeps,
  op: ApplyOp,
  { type, path, components }: Target,
  budget: ContentBudget,
  where: string,
): Result<Step, ProtocolError> {
  switch (op.op) {
    case 'write': {
      const content = decodeWithin(op, budget, where);
      if (!content.ok) return content;
      return ok(async (timing) => ({
        op: 'write',
        type,
        path,
        ...(await deps.files.write(type, components, content.value, op.expect, timing)),
      }));
    }
    case 'writeDir': {
      const entries = checkEntries(op.entries, budget, where);
      if (!entries.ok) return entries;
      return ok(async (timing) => ({
        op: 'writeDir',
        type,
        path,
        ...(await deps.files.writeDir(type, components, entries.value, op.expect, timing)),
      }));
    }
    case 'delete':
      return ok(async (timing) => ({
        op: 'delete',
        type,
        path,
        ...(await deps.files.remove(type, components, op.expect, timing)),
      }));
  }
}

/** How many ops of one batch run at once when their paths are independent. */
const PARALLEL_OPS = 8;

/**
 * Ops can run at once when no two touch one unit (a root and the first component below it): units share no
 * directory but their root, which ops never make, prune or replace, so nothing one op does can be seen by
 * another. Ops on one unit are serialized by the store anyway; running them in order keeps the op order.
 */
export function independent(targets: readonly Pick<Target, 'type' | 'components'>[]): boolean {
  const units = new Set(targets.map((t) => `${t.type}\0${t.components[0] ?? ''}`));
  return units.size === targets.length;
}

// The agent's Prometheus metrics. Every label value comes from a closed set fixed here (op kinds, op outcomes,
// request error codes, command kinds): nothing a request carries (a path, a uuid, a key id) ever becomes a label.
import {
  OP_ERROR_CODES,
  REQUEST_ERROR_CODES,
  type ApplyResult,
  type CommandKind,
  type RequestErrorCode,
} from '@hostfiles/shared';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export type OpKind = ApplyResult['op'];
/** An op's status, or the code it failed with (`failed` alone only if it carried none). */
export type OpOutcome = ApplyResult['status'] | NonNullable<ApplyResult['error']>['code'];
/** `ok`: answered 200; `refused`: answered a protocol error; `error`: an internal error. */
export type RequestOutcome = 'ok' | 'refused' | 'error';

/** What the request pipeline tells the metrics: each call O(1), no allocation beyond prom-client's own. */
export interface AgentMetrics {
  op(kind: OpKind, outcome: OpOutcome): void;
  refused(code: RequestErrorCode): void;
  /** a signed request's time from its first byte read to its answer, in seconds */
  request(kind: CommandKind, outcome: RequestOutcome, seconds: number): void;
}

/** When no metrics listener is configured: the pipeline calls these and nothing is kept. */
export const NO_METRICS: AgentMetrics = {
  op: () => undefined,
  refused: () => undefined,
  request: () => undefined,
};

// Records, so that a kind or status added to the protocol without a line here is a type error.
const OP_KINDS: Readonly<Record<OpKind, true>> = { write: true, writeDir: true, delete: true };
const OP_STATUSES: Readonly<Record<ApplyResult['status'], true>> = {
  written: true,
  deleted: true,
  absent: true,
  failed: true,
};
const COMMAND_KINDS: Readonly<Record<CommandKind, true>> = {
  'files.apply': true,
  'files.read': true,
  'files.list': true,
  'files.stat': true,
  'files.busy': true,
};
const OUTCOMES: ReadonlySet<string> = new Set<string>([...Object.keys(OP_STATUSES), ...OP_ERROR_CODES]);
const CODES: ReadonlySet<string> = new Set<string>(REQUEST_ERROR_CODES);

/**
 * Seconds: a stat or a small write answers in a few ms (most of it the journal's fdatasync); a 64 MiB NVRAM store in
 * about a second; the request timeout is 74 s by default.
 */
export const REQUEST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 75];

export interface AgentMetricsSources {
  /** the body budget's bytes held now */
  readonly bodyBytesInFlight: () => number;
  /** the replay journal file's size now */
  readonly journalBytes: () => Promise<number>;
}

export interface AgentRegistry {
  readonly metrics: AgentMetrics;
  readonly registry: Registry;
}

/** A registry of its own (no global one), its gauges read at scrape time from `sources`. */
export function createAgentMetrics(sources: AgentMetricsSources): AgentRegistry {
  const registry = new Registry();
  const registers = [registry];
  const ops = new Counter({
    name: 'hostfiles_agent_ops_total',
    help: 'Ops of files.apply commands run, by op kind and outcome (its status, or the code it failed with).',
    labelNames: ['kind', 'outcome'] as const,
    registers,
  });
  const refusals = new Counter({
    name: 'hostfiles_agent_refusals_total',
    help: 'Requests refused, by error code (DESIGN.md, what the agent checks), whoever sent them.',
    labelNames: ['code'] as const,
    registers,
  });
  const requests = new Histogram({
    name: 'hostfiles_agent_request_duration_seconds',
    help: 'Signed requests, from the first body byte read to the answer, by command kind and outcome.',
    labelNames: ['kind', 'outcome'] as const,
    buckets: REQUEST_BUCKETS,
    registers,
  });
  new Gauge({
    name: 'hostfiles_agent_body_bytes_in_flight',
    help: 'Request-body bytes held now, all connections together (limits.bodyBytesInFlight bounds them).',
    registers,
    collect() {
      this.set(sources.bodyBytesInFlight());
    },
  });
  new Gauge({
    name: 'hostfiles_agent_journal_bytes',
    help: 'Size of the replay journal file (replay.jsonl in the state directory).',
    registers,
    async collect() {
      this.set(await sources.journalBytes());
    },
  });
  // Every series there can be, at zero from the start: a rate() or an increase() sees the first one.
  for (const kind of Object.keys(OP_KINDS)) for (const outcome of OUTCOMES) ops.inc({ kind, outcome }, 0);
  for (const code of CODES) refusals.inc({ code }, 0);

  return {
    registry,
    metrics: {
      // The types already say so; the checks keep a value from elsewhere (a future caller) out of the labels.
      op: (kind, outcome) => {
        if (Object.hasOwn(OP_KINDS, kind)) ops.inc({ kind, outcome: OUTCOMES.has(outcome) ? outcome : 'failed' });
      },
      refused: (code) => {
        refusals.inc({ code: CODES.has(code) ? code : 'internal' });
      },
      request: (kind, outcome, seconds) => {
        if (Object.hasOwn(COMMAND_KINDS, kind)) requests.observe({ kind, outcome }, seconds);
      },
    },
  };
}

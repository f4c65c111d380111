// The Prometheus metrics of `hostfiles serve`. Label values come only from closed sets fixed here (flow kinds,
// outcomes, command kinds, host states): never a VM, a host, a path or anything a caller sent.
import type { CommandKind } from '@hostfiles/shared';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { AGENT_CALL_FAILURES, isAgentCallError, type AgentCallFailure } from '../agents/agent-error.js';
import { API_ERROR_CODES, type ApiErrorCode } from '../api/errors.js';
import { HOST_STATES, type HostState, type StoreReads } from '../store/index.js';

/** What a flow is counted as: each API route that runs one, and the retry worker's passes (`retry`). */
export const FLOW_KINDS = [
  'host_add',
  'vm_add',
  'vm_move',
  'tpm_add',
  'write',
  'adopt',
  'sync',
  'fleet_sync',
  'restore',
  'reconcile',
  'remove_tpm',
  'destroy_vm',
  'retry',
] as const;
export type FlowKind = (typeof FLOW_KINDS)[number];
/** `ok`, the API error code the flow ended in, or `error` (a background pass that threw). */
export type FlowOutcome = 'ok' | ApiErrorCode | 'error';
const FLOW_OUTCOMES: readonly FlowOutcome[] = ['ok', ...API_ERROR_CODES, 'error'];

export type AgentCallKind = CommandKind | 'info';
export type AgentCallOutcome = 'ok' | AgentCallFailure | 'error';
const AGENT_CALL_KINDS: Readonly<Record<AgentCallKind, true>> = {
  'files.apply': true,
  'files.read': true,
  'files.list': true,
  'files.stat': true,
  'files.busy': true,
  info: true,
};
const AGENT_CALL_OUTCOMES: ReadonlySet<string> = new Set(['ok', ...AGENT_CALL_FAILURES, 'error']);

/** Seconds: a stat answers in milliseconds; a write of a 64 MiB NVRAM store, or a call that times out, in tens. */
export const AGENT_CALL_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export interface ServeMetrics {
  readonly registry: Registry;
  flow(kind: FlowKind, outcome: FlowOutcome): void;
  agentCall(kind: AgentCallKind, outcome: AgentCallOutcome, seconds: number): void;
  /** Reads the database's gauges (two queries) and renders every metric: what one scrape answers. */
  scrape(): Promise<{ contentType: string; body: string }>;
}

export interface ServeMetricsDeps {
  readonly store: Pick<StoreReads, 'deletionStats' | 'listHosts'>;
  readonly now: () => number;
}

/** The outcome of an agent call that threw: its failure when it is an AgentCallError. */
export const agentCallOutcome = (error: unknown): AgentCallOutcome =>
  isAgentCallError(error) ? error.failure : 'error';

export function createServeMetrics({ store, now }: ServeMetricsDeps): ServeMetrics {
  const registry = new Registry();
  const registers = [registry];
  const pending = new Gauge({
    name: 'hostfiles_pending_deletions',
    help: 'Deletions in the outbox, not yet confirmed by their host (guards of writes in flight included).',
    registers,
  });
  const oldest = new Gauge({
    name: 'hostfiles_pending_deletion_oldest_age_seconds',
    help: 'Age of the oldest pending deletion (0 when none is pending).',
    registers,
  });
  const hosts = new Gauge({
    name: 'hostfiles_hosts',
    help: 'Hosts by the state of their last health check.',
    labelNames: ['state'] as const,
    registers,
  });
  const flows = new Counter({
    name: 'hostfiles_flows_total',
    help: 'Flows run by this serve process, by kind and outcome (ok, or the API error code they ended in).',
    labelNames: ['kind', 'outcome'] as const,
    registers,
  });
  const calls = new Histogram({
    name: 'hostfiles_controller_agent_call_duration_seconds',
    help: 'Calls to agents, retries included, by command kind and outcome (ok, or how the call failed).',
    labelNames: ['kind', 'outcome'] as const,
    buckets: AGENT_CALL_BUCKETS,
    registers,
  });
  for (const kind of FLOW_KINDS) flows.inc({ kind, outcome: 'ok' }, 0);
  const outcomes: ReadonlySet<string> = new Set(FLOW_OUTCOMES);
  const kinds: ReadonlySet<string> = new Set(FLOW_KINDS);

  /** The gauges the database holds: read once per scrape, not once per gauge. */
  const refresh = async (): Promise<void> => {
    const [stats, all] = await Promise.all([store.deletionStats(), store.listHosts()]);
    pending.set(stats.count);
    oldest.set(stats.oldestCreatedAt === null ? 0 : Math.max(0, (now() - stats.oldestCreatedAt) / 1000));
    const byState: Record<HostState, number> = { Connected: 0, Disconnected: 0 };
    for (const host of all) byState[host.state]++;
    for (const state of HOST_STATES) hosts.set({ state }, byState[state]);
  };

  return {
    registry,
    flow(kind, outcome) {
      if (kinds.has(kind)) flows.inc({ kind, outcome: outcomes.has(outcome) ? outcome : 'error' });
    },
    agentCall(kind, outcome, seconds) {
      if (Object.hasOwn(AGENT_CALL_KINDS, kind))
        calls.observe({ kind, outcome: AGENT_CALL_OUTCOMES.has(outcome) ? outcome : 'error' }, seconds);
    },
    async scrape() {
      await refresh();
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}

// The agent's server limits: how many connections, how long headers and a whole request may take, how long an idle
// connection stays, and the budget of body bytes in flight. Configured under `limits`; each has a default.
import type { Server } from 'node:net';
import { z } from 'zod';
import { minimumBudget } from './body-budget.js';

const MIB = 1024 * 1024;
/**
 * 32 MiB: the agent's memory is ~80 MB at rest, plus the bodies it holds, plus up to ~100 MB of read buffers that
 * the garbage collector has not yet freed when bodies arrive at full speed; 32 MiB keeps that under 256 MB.
 */
export const DEFAULT_BODY_BYTES_IN_FLIGHT = 32 * MIB;
export const DEFAULT_MAX_CONNECTIONS = 256;
/**
 * New connections one address may open: 20 a second, 64 at once. A controller keeps its connections alive (it opens
 * a few a minute); an address opening thousands a second only to make the agent handshake or answer 503 is cut off
 * at the accept, which costs the agent next to nothing.
 */
export const DEFAULT_NEW_CONNECTIONS_PER_SECOND = 20;
export const DEFAULT_NEW_CONNECTIONS_BURST = 64;
/**
 * Strangers' connections (not yet proven a controller's) one address may hold: an eighth of the default limit. Past
 * it, the address's oldest gives its place to its new one (connection-places.ts); a controller's are not counted.
 */
export const DEFAULT_CONNECTIONS_PER_ADDRESS = 32;
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 5_000;
/** 32 MiB/s: ~15% of a core for checking them; a 4 MiB body in 125 ms when nothing else is large. */
export const DEFAULT_LARGE_BODY_BYTES_PER_SECOND = 32 * MIB;
/**
 * The slowest body the default request timeout gives time for: a 4 MiB body at 64 KiB/s takes 64 s, and the whole
 * request (headers included) may take the headers timeout more. The controller itself sends at ≥ 4 MiB/s.
 */
export const MIN_BODY_BYTES_PER_SECOND = 64 * 1024;

export const limitsSchema = z
  .strictObject({
    /** default: 32 MiB, or room for two maximum-size bodies when that is more */
    bodyBytesInFlight: z
      .int()
      .min(64 * 1024)
      .max(4096 * MIB)
      .optional(),
    /** how fast bodies over 64 KiB are read, all together */
    largeBodyBytesPerSecond: z.int().min(MIB).optional(),
    maxConnections: z.int().min(1).max(65_536).optional(),
    /** per remote address (an IPv6 one by its /64) */
    newConnectionsPerSecond: z.number().min(0.001).max(1_000_000).optional(),
    newConnectionsBurst: z.int().min(1).max(1_000_000).optional(),
    /** strangers' connections open at once, per remote address (an IPv6 one by its /64) */
    connectionsPerAddress: z.int().min(1).max(65_536).optional(),
    headersTimeoutMs: z.int().min(1).max(600_000).optional(),
    /** default: the headers timeout plus maxBodyBytes at MIN_BODY_BYTES_PER_SECOND */
    requestTimeoutMs: z.int().min(1).max(3_600_000).optional(),
    keepAliveTimeoutMs: z.int().min(1).max(600_000).optional(),
  })
  .default({});
export type LimitsConfig = z.infer<typeof limitsSchema>;

export interface ServerLimits {
  readonly bodyBytesInFlight: number;
  readonly largeBodyBytesPerSecond: number;
  readonly maxConnections: number;
  readonly newConnectionsPerSecond: number;
  readonly newConnectionsBurst: number;
  readonly connectionsPerAddress: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
}

/** Every limit, the configured ones as they are and the others from their defaults. */
export function resolveLimits(maxBodyBytes: number, limits: LimitsConfig): ServerLimits {
  const headersTimeoutMs = limits.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS;
  return {
    bodyBytesInFlight:
      limits.bodyBytesInFlight ?? Math.max(DEFAULT_BODY_BYTES_IN_FLIGHT, minimumBudget(2 * maxBodyBytes)),
    largeBodyBytesPerSecond: limits.largeBodyBytesPerSecond ?? DEFAULT_LARGE_BODY_BYTES_PER_SECOND,
    maxConnections: limits.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
    newConnectionsPerSecond: limits.newConnectionsPerSecond ?? DEFAULT_NEW_CONNECTIONS_PER_SECOND,
    newConnectionsBurst: limits.newConnectionsBurst ?? DEFAULT_NEW_CONNECTIONS_BURST,
    connectionsPerAddress: limits.connectionsPerAddress ?? DEFAULT_CONNECTIONS_PER_ADDRESS,
    headersTimeoutMs,
    requestTimeoutMs:
      limits.requestTimeoutMs ?? headersTimeoutMs + Math.ceil((maxBodyBytes * 1000) / MIN_BODY_BYTES_PER_SECOND),
    keepAliveTimeoutMs: limits.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
  };
}

/** The config's problems with its limits (for its superRefine), each as a path and a message. */
export function limitProblems(maxBodyBytes: number, limits: LimitsConfig): { path: string[]; message: string }[] {
  const problems: { path: string[]; message: string }[] = [];
  const resolved = resolveLimits(maxBodyBytes, limits);
  if (resolved.bodyBytesInFlight < minimumBudget(maxBodyBytes)) {
    problems.push({
      path: ['limits', 'bodyBytesInFlight'],
      message: `must be at least 4/3 of maxBodyBytes (${minimumBudget(maxBodyBytes)}): a quarter is kept for small bodies`,
    });
  }
  if (resolved.requestTimeoutMs < resolved.headersTimeoutMs) {
    problems.push({ path: ['limits', 'requestTimeoutMs'], message: 'must be at least limits.headersTimeoutMs' });
  }
  return problems;
}

/** Options for http.createServer (https.createServer takes them too). */
export function serverOptions(limits: ServerLimits): {
  headersTimeout: number;
  requestTimeout: number;
  keepAliveTimeout: number;
  connectionsCheckingInterval: number;
} {
  return {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // Node enforces both timeouts only when it checks (every 30 s by default): check often enough that a timeout
    // is kept to within a quarter of itself, at most once a second (a walk over at most maxConnections entries).
    connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4))),
  };
}

/** What createServer's options do not cover (the connection limit is connection-places.ts's, not Node's). */
export function limitServer(server: Server, limits: ServerLimits): void {
  // An option of createServer only since some Node 20 release: set it on the server too.
  if ('keepAliveTimeout' in server) server.keepAliveTimeout = limits.keepAliveTimeoutMs;
}

/**
 * Hears each connection refused for the limit and reports at most once per `everyMs`, with the count since the last
 * report: a flood of connections makes a few log lines, not one each.
 */
export function dropReporter(report: (dropped: number) => void, now: () => number, everyMs = 60_000): () => void {
  let dropped = 0;
  let last = Number.NEGATIVE_INFINITY;
  return () => {
    dropped++;
    const at = now();
    if (at - last < everyMs) return;
    report(dropped);
    dropped = 0;
    last = at;
  };
}

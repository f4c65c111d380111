// Sends prepared requests from a number of concurrent clients, each one request at a time, and times them.
import type { Client } from './transport.js';
import type { BenchRequest } from './workload.js';

export interface LoadResult {
  readonly seconds: number;
  /** per request, milliseconds */
  readonly latencies: readonly number[];
  /** the answers' bodies, in no particular order */
  readonly answers: readonly Buffer[];
}

/** `clients` loops take the next request off one queue until none is left, as 16 controllers' workers would. */
export async function runLoad(
  client: Client,
  url: string,
  requests: readonly BenchRequest[],
  clients: number,
): Promise<LoadResult> {
  const latencies: number[] = [];
  const answers: Buffer[] = [];
  let next = 0;
  const loop = async (): Promise<void> => {
    while (next < requests.length) {
      const request = requests[next++] as BenchRequest;
      const sent = performance.now();
      answers.push(await client.post(url, request.body, request.headers));
      latencies.push(performance.now() - sent);
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: Math.min(clients, requests.length) }, loop));
  return { seconds: (performance.now() - start) / 1000, latencies, answers };
}

export const median = (values: readonly number[]): number => quantile(values, 0.5);

/** The nearest-rank quantile; NaN of nothing. */
export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;
}

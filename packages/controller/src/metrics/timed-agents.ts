// An AgentClient that times every call to an agent into the metrics, and otherwise is the client it wraps.
import type { AgentClient } from '../agents/index.js';
import { agentCallOutcome, type ServeMetrics } from './serve-metrics.js';

export function timedAgentClient(client: AgentClient, metrics: Pick<ServeMetrics, 'agentCall'>): AgentClient {
  const timed = async <T>(kind: Parameters<ServeMetrics['agentCall']>[0], call: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      const value = await call();
      metrics.agentCall(kind, 'ok', (performance.now() - started) / 1000);
      return value;
    } catch (error) {
      metrics.agentCall(kind, agentCallOutcome(error), (performance.now() - started) / 1000);
      throw error;
    }
  };
  return {
    info: (endpoint) => timed('info', () => client.info(endpoint)),
    // A handshake only (host add, set-url): not a call the histogram's kinds name.
    certificate: (url) => client.certificate(url),
    send: (target, kind, body, options) => timed(kind, () => client.send(target, kind, body, options)),
    close: () => client.close(),
  };
}

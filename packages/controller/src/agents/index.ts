export {
  attemptTimeoutMs,
  createAgentClient,
  errnosOf,
  listingWithinMs,
  MIN_BYTES_PER_SECOND,
  type AgentClient,
  type AgentClientOptions,
  type AgentEndpoint,
  type AgentTarget,
  type SendOptions,
} from './agent-client.js';
export { AgentCallError, isAgentCallError, type AgentCallFailure } from './agent-error.js';
export { createPinnedDispatcher, fetchCertificate } from './pinned-tls.js';

export { createAgentClient, type AgentClient, type AgentClientOptions, type AgentTarget } from './agent-client.js';
export { AgentCallError, isAgentCallError, type AgentCallFailure } from './agent-error.js';

export { createApp } from './app.js';
export { configSchema, exampleConfig, loadConfig, type AgentConfig } from './config.js';
export { AGENT_EVENTS, type AppDeps, type AgentEvent } from './deps.js';
export { TEMP_PREFIX } from './files/index.js';

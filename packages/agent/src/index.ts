export { createApp } from './app.js';
export { configSchema, exampleConfig, loadConfig, type AgentConfig } from './config.js';
export type { AppDeps, AgentEvent } from './deps.js';
export { TEMP_PREFIX } from './files/index.js';

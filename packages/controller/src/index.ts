export * from './agents/index.js';
export * from './flows/index.js';
export * from './store/index.js';
export * from './secureboot/index.js';
export { SERVE_EVENTS, type ServeEvent } from './cli/serve-log.js';

export * from './errors.js';
export * from './result.js';
export * from './protocol/schemas.js';
export * from './protocol/strict-json.js';
export * from './protocol/payload.js';
export * from './protocol/paths.js';
export * from './envelope/keys.js';
export * from './envelope/envelope.js';

export * from './agents/index.js';

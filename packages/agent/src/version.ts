// The agent's version, from its package.json. The bundle (scripts/bundle-agent.mjs) replaces this module by the
// literal: there is no package.json beside the bundle.
import { createRequire } from 'node:module';

export const VERSION = (createRequire(import.meta.url)('../package.json') as { version: string }).version;

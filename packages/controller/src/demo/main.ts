#!/usr/bin/env node
// A stand-alone entry for the demo, until `hostfiles demo` is wired into the CLI.
import { runDemo } from './demo.js';

runDemo((line) => {
  process.stdout.write(`${line}\n`);
}).then(
  (result) => {
    process.exitCode = result.ok ? 0 : 1;
  },
  (error: unknown) => {
    process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);

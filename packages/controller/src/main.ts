#!/usr/bin/env node
// hostfiles: the controller's command line. The only module that touches process (argv, env, exit, stdio).
import { createRequire } from 'node:module';
import { watchReaders } from '@hostfiles/shared/core';
import { failureOf, runCli } from './cli/index.js';
import type { CliIo } from './cli/index.js';

// Read when asked (--version): resolving and parsing package.json would cost every other call its start-up.
const version = (): string => (createRequire(import.meta.url)('../package.json') as { version: string }).version;

// A reader that went away (`hostfiles demo | head`) is not a failure of the command: its output is dropped from then
// on and the command runs to its end, cleaning up what it started, instead of dying on EPIPE with agents left running.
const readerGone = watchReaders(process);

let stopAsked = false;
const io: CliIo = {
  stdout: (text) => readerGone.stdout || process.stdout.write(text),
  stderr: (text) => readerGone.stderr || process.stderr.write(text),
  stderrIsTty: process.stderr.isTTY, // undefined when not a terminal, whatever the type says
  // Only `serve` and `demo` ask; once one has, a SIGTERM or SIGINT stops it cleanly, and the same signal again kills.
  stopSignal: () => {
    stopAsked = true;
    const stop = new AbortController();
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.once(signal, () => {
        stop.abort(signal);
      });
    }
    return stop.signal;
  },
  // Loaded when serve asks, not at every start: node:fs and the shared package cost every command their start-up.
  stdoutIsJournal: async () => {
    const [{ fstatSync }, { isJournalStream }] = await Promise.all([import('node:fs'), import('@hostfiles/shared')]);
    return isJournalStream(process.env['JOURNAL_STREAM'], fstatSync(1, { bigint: true }));
  },
  // Says what the command leaves, then dies of the signal as it would have (a shell loop stops at a Ctrl-C only when
  // its command died of SIGINT, not when it exited 130).
  onInterrupt: (note) => {
    const listeners = (['SIGTERM', 'SIGINT'] as const).map((signal) => {
      const listener = (): void => {
        uninstall();
        if (stopAsked) return;
        if (!readerGone.stderr) process.stderr.write(note(signal));
        process.kill(process.pid, signal);
      };
      process.once(signal, listener);
      return { signal, listener };
    });
    const uninstall = (): void => {
      for (const { signal, listener } of listeners) process.off(signal, listener);
    };
    return uninstall;
  },
  onReload: (listener) => {
    process.on('SIGHUP', listener);
  },
};

runCli(process.argv.slice(2), {
  io,
  env: { db: process.env['HOSTFILES_DB'], key: process.env['HOSTFILES_KEY'] },
  version,
  now: Date.now,
  random: Math.random,
}).catch((error: unknown) => {
  const failure = failureOf(error);
  if (!readerGone.stderr) process.stderr.write(failure.text);
  process.exitCode = failure.exitCode;
});

// `hostfiles serve` as a real process: started with its arguments, its JSON log lines read as they come.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { cleanEnv, CLI } from './cli.js';

export type LogLine = Record<string, unknown> & { readonly event?: string };

export interface Served {
  readonly url: string;
  readonly child: ChildProcess;
  /** stdout, one parsed JSON line each */
  readonly lines: LogLine[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  /** the first line (seen or to come) with that event and matching `when` */
  waitFor(event: string, when?: (line: LogLine) => boolean): Promise<LogLine>;
}

/** Starts `hostfiles serve` and resolves once it logged `listening`. */
export async function startServe(args: readonly string[]): Promise<Served> {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], {
    env: cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const lines: LogLine[] = [];
  const waiters: { event: string; when: (line: LogLine) => boolean; resolve: (line: LogLine) => void }[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
    child.once('close', (code, signal) => {
      resolve({ code, signal, stderr });
    });
  });
  createInterface({ input: child.stdout }).on('line', (text) => {
    const line = JSON.parse(text) as LogLine;
    lines.push(line);
    for (const waiter of waiters.filter((w) => w.event === line.event && w.when(line))) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(line);
    }
  });
  const waitFor = (event: string, when: (line: LogLine) => boolean = () => true): Promise<LogLine> => {
    const seen = lines.find((line) => line.event === event && when(line));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      waiters.push({ event, when, resolve });
      void exited.then(({ code }) => {
        reject(new Error(`serve exited (${String(code)}) before logging ${event}: ${stderr}`));
      });
    });
  };
  const listening = await waitFor('listening');
  assert.equal(typeof listening['port'], 'number');
  return { url: `http://127.0.0.1:${String(listening['port'])}`, child, lines, exited, waitFor };
}

/** Polls `probe` (each call a real round trip) until it answers a value; fails the test past the deadline. */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(50);
  }
}

/** One real API round trip to `server` with the bearer `token`; the body parsed as JSON. */
export async function apiCall(
  server: Pick<Served, 'url'>,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) };
}

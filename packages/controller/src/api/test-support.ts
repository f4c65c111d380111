// For the API's tests: the app in-process over a real SQLite file, requests whose answers are checked against the
// contract (contract-support.ts), and state on an agent's disk as libvirt or a running VM leaves it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import type { TestContext } from 'node:test';
import { createLogger, generateSigningKey, type SigningKey } from '@hostfiles/shared';
import type { Hono } from 'hono';
import { createAgentClient } from '../agents/index.js';
import { createVmQueue, type FlowDeps } from '../flows/index.js';
import type { Store } from '../store/index.js';
import { openTempStore } from '../store/test-support.js';
import { createApiApp } from './app.js';
import type { Contract } from './contract-support.js';
import type { ApiEvent } from './deps.js';
import type { FlowObserver } from './flow-routes.js';

export const TOKEN = 'test-token-0123456789abcdef';
export const AUTH = { authorization: `Bearer ${TOKEN}` };

export interface TestApi {
  readonly app: Hono;
  readonly store: Store;
  readonly key: SigningKey;
  /** every log line, parsed */
  readonly lines: Record<string, unknown>[];
}

/** The app over a fresh database file; flows that reach agents sign with `key` (a new one unless given). */
export async function createTestApi(
  t: TestContext,
  options: { readonly maxBodyBytes?: number; readonly key?: SigningKey; readonly onFlow?: FlowObserver } = {},
): Promise<TestApi> {
  const { store } = await openTempStore(t);
  const key = options.key ?? generateSigningKey();
  const flows: FlowDeps = {
    store,
    agents: createAgentClient({ key, timeoutMs: 2000, retries: 0, now: Date.now, backoffMs: 0 }),
    queue: createVmQueue(),
    now: Date.now,
    random: () => 0.5,
    concurrency: 4,
    retryBaseMs: 0,
    retryMaxMs: 0,
  };
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger<ApiEvent>({ write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  const { maxBodyBytes, onFlow } = options;
  const app = createApiApp({
    flows,
    token: TOKEN,
    logger,
    ...(maxBodyBytes === undefined ? {} : { maxBodyBytes }),
    ...(onFlow === undefined ? {} : { onFlow }),
  });
  return { app, store, key, lines };
}

export interface Reply<T> {
  readonly status: number;
  readonly body: T;
}
export type Body = Record<string, unknown>;
export interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string; readonly problems?: { path: string }[] };
}

/** Requests to `app`, each answer checked against the document before the test sees it. */
export function checkedCaller(app: Hono, contract: Contract) {
  return async <T = Body>(
    method: string,
    url: string,
    body?: unknown,
    headers: Record<string, string> = AUTH,
  ): Promise<Reply<T>> => {
    const response = await app.request(url, {
      method,
      headers,
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const json: unknown = await response.json();
    contract.check(method, url, response.status, json);
    return { status: response.status, body: json as T };
  };
}

export function expectStatus<T>(reply: Reply<T>, status: number): T {
  assert.equal(reply.status, status, JSON.stringify(reply.body));
  return reply.body;
}

export function expectError(reply: Reply<unknown>, status: number, code: string): ErrorBody['error'] {
  const { error } = expectStatus(reply as Reply<ErrorBody>, status);
  assert.equal(error.code, code, error.message);
  return error;
}

export const b64 = (text: string): string => Buffer.from(text).toString('base64');

/**
 * Holds a lock on `path` the way QEMU holds its NVRAM open (flock(1)), until released. `--no-fork`: the process
 * killed is the one holding the lock, not a parent whose child would hold it on.
 */
export async function holdLock(path: string): Promise<{ release(): Promise<void> }> {
  const child = spawn('flock', ['--exclusive', '--no-fork', path, '-c', 'echo locked; exec sleep infinity'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      resolve();
    });
  });
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', () => {
      resolve();
    });
    child.once('error', reject);
    void exited.then(() => {
      reject(new Error(`flock ${path} exited before holding the lock`));
    });
  });
  return {
    async release() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Writes `content` at `path`, making the directories above it. */
export function put(path: string, content: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
}

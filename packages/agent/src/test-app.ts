// Tests only: the agent's app in-process (app.request) over temp roots, a fresh journal and a controller key it trusts.
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import {
  generateSigningKey,
  silentLogger,
  trustedKeyFromBase64,
  type GeneratedKey,
  type Logger,
} from '@hostfiles/shared';
import { createApp } from './app.js';
import type { AgentEvent } from './deps.js';
import { createFileStore, type FileStore } from './files/index.js';
import type { StoreHooks } from './files/types.js';
import { openReplayJournal, type ReplayJournal } from './journal/replay-journal.js';
import { createBodyBudget } from './limits/body-budget.js';

export interface TestApp {
  readonly app: ReturnType<typeof createApp>;
  readonly roots: { readonly TpmState: string; readonly NvRam: string };
  readonly hostUuid: string;
  /** the key the app trusts: what signs its commands */
  readonly controller: GeneratedKey;
}

export interface TestAppOptions {
  /** the agent's clock (its app, journal and body budget); default Date.now */
  readonly now?: () => number;
  readonly maxBodyBytes?: number;
  readonly clockSkewMs?: number;
  /** the replay journal's fdatasync (journal/held-sync.ts holds it) */
  readonly journalSync?: (handle: FileHandle) => Promise<void>;
  /** the file store's test seams */
  readonly storeHooks?: StoreHooks;
  /** wraps the file store the app uses (to watch what it is asked) */
  readonly files?: (store: FileStore) => FileStore;
  /** wraps the replay journal the app uses (to watch what it is asked) */
  readonly journal?: (journal: ReplayJournal) => ReplayJournal;
  /** the app's log lines; default none */
  readonly logger?: Logger<AgentEvent>;
}

/** Everything is removed after the test. */
export async function testApp(t: TestContext, options: TestAppOptions = {}): Promise<TestApp> {
  const now = options.now ?? Date.now;
  const dir = mkdtempSync(join(tmpdir(), 'hostfiles-app-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const roots = { TpmState: join(dir, 'swtpm'), NvRam: join(dir, 'nvram') };
  for (const root of Object.values(roots)) mkdirSync(root);
  const controller = generateSigningKey();
  const trusted = trustedKeyFromBase64(controller.publicKey);
  const journal = await openReplayJournal({
    dir,
    now,
    ...(options.journalSync === undefined ? {} : { sync: options.journalSync }),
  });
  t.after(() => journal.close());
  const hostUuid = randomUUID();
  const app = createApp({
    hostUuid,
    version: 'test',
    startedAt: now(),
    roots,
    trustedKeys: new Map([[trusted.keyId, trusted]]),
    signer: generateSigningKey(),
    journal: options.journal?.(journal) ?? journal,
    files: (options.files ?? ((store: FileStore) => store))(
      createFileStore({ roots, ...(options.storeHooks === undefined ? {} : { hooks: options.storeHooks }) }),
    ),
    logger: options.logger ?? silentLogger<AgentEvent>(),
    now,
    maxBodyBytes: options.maxBodyBytes ?? 64 * 1024,
    bodyBudget: createBodyBudget({ limit: 1024 * 1024, largeBytesPerSecond: 1024 * 1024, now }),
    maxContentBytes: 1024 * 1024,
    clockSkewMs: options.clockSkewMs ?? 30_000,
  });
  return { app, roots, hostUuid, controller };
}

// Fixtures for the store's tests: a real database file in a temporary directory, and a small inventory.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { createSqliteStore, type SqliteStoreOptions } from './sqlite-store.js';
import type { FileType, NewPendingDeletion, Store, StoreWrites, VmHostFile } from './types.js';

/** A fresh directory removed after the test. */
export async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hostfiles-store-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A store on a fresh file, closed after the test (before its directory goes). */
export async function openTempStore(
  t: TestContext,
  options: SqliteStoreOptions = {},
): Promise<{ store: Store; path: string }> {
  const path = join(await tempDir(t), 'hostfiles.db');
  const store = await createSqliteStore(path, options);
  t.after(() => store.close());
  return { store, path };
}

/** A clock that moves only when told to. */
export function manualClock(start = 1_700_000_000_000): { now: () => number; set: (at: number) => void } {
  let at = start;
  return { now: () => at, set: (next) => (at = next) };
}

export const sha = (c: string): string => c.repeat(64).slice(0, 64);

export async function addHost(store: Pick<StoreWrites, 'addHost'>, name: string): Promise<string> {
  const uuid = `host-${name}`;
  await store.addHost({
    uuid,
    name,
    url: `http://${name}:7300`,
    publicKey: 'pk',
    keyId: '0011223344556677',
    certificate: null,
    state: 'Connected',
    lastSeenAt: null,
  });
  return uuid;
}

export async function addVm(
  store: Pick<StoreWrites, 'addVm'>,
  name: string,
  hostUuid: string | null,
  secureBoot = false,
): Promise<string> {
  const uuid = `vm-${name}`;
  await store.addVm({ uuid, name, hostUuid, bootMode: 'UEFI', secureBoot });
  return uuid;
}

export const fileRow = (vmUuid: string, hostUuid: string, type: FileType, path: string, digit = 'a'): VmHostFile => ({
  uuid: `file-${vmUuid}-${hostUuid}-${type}`,
  vmUuid,
  hostUuid,
  type,
  path,
  kind: 'file',
  sha256: sha(digit),
  size: 3,
  lastSyncAt: 1,
});

export const pendingRow = (
  hostUuid: string,
  path: string,
  nextAttemptAt: number,
  tpmUuid: string | null = null,
): NewPendingDeletion => ({
  hostUuid,
  type: 'TpmState',
  path,
  vmUuid: 'vm-gone',
  tpmUuid,
  nextAttemptAt,
  lastError: null,
});

/** A backup of one file state whose content is stored as given (identity). */
export const fileBackup = (uuid: string, vmUuid: string, type: FileType, content: Uint8Array, digit: string) => ({
  uuid,
  vmUuid,
  type,
  kind: 'file' as const,
  sha256: sha(digit),
  size: content.byteLength,
  entries: [
    {
      path: '',
      content: Buffer.from(content),
      encoding: 'identity' as const,
      sha256: sha(digit),
      size: content.byteLength,
    },
  ],
});

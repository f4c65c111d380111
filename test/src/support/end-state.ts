// What every crash test checks once a restarted controller has resumed and run a retry pass: the hosts' roots hold
// exactly the states the database records, byte for byte, and nothing is left pending or running.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FlowDeps } from '@hostfiles/controller';
import type { Fleet } from './controller.js';

/** Every regular file below `dir`, as absolute paths. */
export function filesBelow(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
}

const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

export interface EndStateOptions {
  /** files on the hosts that hostfiles never wrote (libvirt's, an operator's): left alone, in no row */
  readonly foreign?: readonly string[];
}

/**
 * On every host: each file below the agent's roots is a file state recorded there with its digest, or foreign; each
 * recorded file state is on disk; the paths hostfiles has charge of are exactly the recorded ones. The outbox is
 * empty and no operation is left running.
 */
export async function assertEndState(fleet: Fleet, deps: FlowDeps, options: EndStateOptions = {}): Promise<void> {
  const foreign = new Set(options.foreign ?? []);
  for (const [i, agent] of fleet.agents.entries()) {
    const host = await deps.store.getHostByName(`host${i}`);
    assert.ok(host !== null, `host${i} is in the inventory`);
    const rows = await deps.store.listFilesByHost(host.uuid);
    const onDisk = [...filesBelow(agent.setup.roots.TpmState), ...filesBelow(agent.setup.roots.NvRam)]
      .filter((path) => !foreign.has(path))
      .sort();
    assert.deepEqual(onDisk, rows.map((row) => row.path).sort(), `host${i}: the files on disk are the recorded ones`);
    for (const row of rows) {
      assert.equal(row.kind, 'file', `${row.path}: these scenes record file states only`);
      assert.equal(sha256(row.path), row.sha256, `${row.path}: on disk as recorded`);
    }
    assert.deepEqual(
      (await deps.store.listOwnedPaths(host.uuid)).map((o) => o.path).sort(),
      rows.map((row) => row.path).sort(),
      `host${i}: hostfiles has charge of exactly the recorded paths`,
    );
  }
  assert.deepEqual(await deps.store.listPendingDeletions(), [], 'the outbox is empty');
  assert.deepEqual(await deps.store.listUnfinishedOperations(), [], 'no operation left running');
}

// Many flows of different kinds started at once on overlapping VMs and paths, with two real agents and a real SQLite
// file, and checked against a sequential model (support/serial-model.ts): once the outbox is drained, the end state
// (files on disk and their bytes; VMs, TPMs, rows, backups) must be one that some serial order of the same operations
// gives. Seeded: a small PRNG picks each run's VMs, types and start order. No sleeps: everything is started in one
// go and awaited with Promise.allSettled.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import {
  addTpm,
  addVm,
  destroyVm,
  fileState,
  isFlowError,
  reconcileHost,
  removeTpms,
  retryPendingDeletions,
  syncVm,
  writeFile,
  type FlowDeps,
} from '@hostfiles/controller';
import { roots, withFleet, type Fleet } from './support/controller.js';
import { assertEndState, filesBelow } from './support/end-state.js';
import {
  describe,
  serialEndStates,
  type ModelLayout,
  type ModelOp,
  type ModelRow,
  type ModelState,
  type StateType,
} from './support/serial-model.js';

/** A and B live on host0, C and D on host1; every one UEFI without secure boot, with a TPM. */
const HOMES: Readonly<Record<string, number>> = { A: 0, B: 0, C: 1, D: 1 };
/** The VMs whose NVRAM has moved on from its first path by the time the flows start. */
const MOVED: readonly string[] = ['A', 'C'];
/** The VM beside each on its host: the one that writes at its paths. */
const PARTNERS: Readonly<Record<string, string>> = { A: 'B', B: 'A', C: 'D', D: 'C' };
const VMS = Object.keys(HOMES);
const TYPES: readonly StateType[] = ['TpmState', 'NvRam'];

/** Path labels stand for the real paths, which carry the fleet's temp roots and the VMs' uuids. */
const LAYOUT: ModelLayout = {
  home: (vm) => HOMES[vm] ?? assert.fail(`no VM ${vm}`),
  pathLabel: (vm, type, moved) => `${vm}.${type}${moved ? '.moved' : ''}`,
};

/** mulberry32: a tiny PRNG, so a failing seed runs again the same. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Eleven operations, every kind in each run, on VMs drawn from A, B and C so they overlap: four writes (a write of
 * NVRAM at the first path goes back to the path the retry pass is deleting; one at the `moved` path rewrites it), a
 * sync, a TPM removal, a destroy, a retry pass, a reconcile --apply, and two writes by the VM beside the one removed
 * or destroyed: at its NVRAM (refused while that VM holds it, taken over once deleted) and at its first NVRAM path,
 * which the retry pass deletes (there only the path keys serialize the two: their VMs differ). Shuffled into the
 * order they are started in.
 */
function opsFor(seed: number): ModelOp[] {
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] ?? assert.fail('no item');
  const vm = (): string => pick(['A', 'B', 'C']);
  const write = (i: number, moved: boolean): ModelOp => {
    const [name, type] = [vm(), moved ? 'NvRam' : pick(TYPES)];
    return { kind: 'write', vm: name, at: name, type, moved, bytes: `op${i} ${name} ${type}` };
  };
  // The VM deleted is one whose first NVRAM path waits in the outbox (A or C), so the VM beside it (B or D) writing
  // there shares no VM key with the retry pass that deletes it.
  const deleted = pick(MOVED);
  const [removed, destroyed] = random() < 0.5 ? [deleted, vm()] : [vm(), deleted];
  const taker = PARTNERS[deleted] ?? assert.fail(`no VM beside ${deleted}`);
  const ops: ModelOp[] = [
    write(0, false),
    write(1, false),
    write(2, true),
    write(3, false),
    { kind: 'sync', vm: vm() },
    { kind: 'removeTpm', vm: removed },
    { kind: 'destroy', vm: destroyed },
    { kind: 'retry' },
    { kind: 'reconcile', host: pick([0, 1]) },
    { kind: 'write', vm: taker, at: deleted, type: 'NvRam', moved: true, bytes: `op9 ${taker} at ${deleted}` },
    { kind: 'write', vm: taker, at: deleted, type: 'NvRam', moved: false, bytes: `op10 ${taker} at ${deleted}` },
  ];
  for (let i = ops.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [ops[i], ops[j]] = [ops[j] as ModelOp, ops[i] as ModelOp];
  }
  return ops;
}

/** The real path of a label, on the VM's home host: states side by side below the roots, as libvirt lays them. */
function realPath(
  fleet: Fleet,
  uuids: ReadonlyMap<string, string>,
  vm: string,
  type: StateType,
  moved: boolean,
): string {
  const uuid = uuids.get(vm) ?? assert.fail(`no VM ${vm}`);
  const root = roots(fleet, LAYOUT.home(vm))[type];
  return join(root, type === 'TpmState' ? `${uuid}-tpm2-00.permall` : `${uuid}${moved ? '-moved' : ''}_VARS.fd`);
}

/** What a state holds once set up; A's and C's NVRAM has moved on from its first path, whose deletion waits in the outbox. */
const initBytes = (vm: string, type: StateType): string => `init ${vm} ${type}`;
const firstNvram = (vm: string): string => `first ${vm} NvRam`;

/**
 * Every VM with a TPM and its states written through the flows: its TPM state, and its NVRAM (A's and C's written at
 * their first path and then moved to their `moved` path, so the outbox holds the first one when the flows start (the retry pass
 * then has deletions to send, at paths a write may go back to). Answers the VMs' uuids and the model's start.
 */
async function setUp(fleet: Fleet): Promise<{ uuids: Map<string, string>; initial: ModelState }> {
  const uuids = new Map<string, string>();
  const rows = new Map<string, ModelRow>();
  const disk = new Map<string, string>();
  const put = async (vm: string, type: StateType, moved: boolean, bytes: string): Promise<void> => {
    const path = realPath(fleet, uuids, vm, type, moved);
    await writeFile(fleet.deps, { vm, type, path, state: fileState(Buffer.from(bytes)) });
  };
  for (const name of VMS) {
    const host = LAYOUT.home(name);
    const vm = await addVm(fleet.deps, { name, host: `host${host}`, bootMode: 'UEFI', secureBoot: false });
    uuids.set(name, vm.uuid);
    await addTpm(fleet.deps, name, 'kms-1');
    await put(name, 'TpmState', false, initBytes(name, 'TpmState'));
    const moved = MOVED.includes(name);
    if (moved) await put(name, 'NvRam', false, firstNvram(name));
    await put(name, 'NvRam', moved, initBytes(name, 'NvRam'));
    for (const [type, at] of [
      ['TpmState', false],
      ['NvRam', moved],
    ] as const) {
      const path = LAYOUT.pathLabel(name, type, at);
      rows.set(`${name} ${type}`, { host, path, bytes: initBytes(name, type) });
      // The first NVRAM path is not on the model's disk: the model's disk is the one left once the outbox is drained.
      disk.set(`host${host} ${path}`, initBytes(name, type));
    }
  }
  assert.equal((await fleet.store.listPendingDeletions()).length, MOVED.length, 'each first NVRAM path is pending');
  // Each write onto the VM's host was a capture: the newest generation of each state is what it wrote last.
  const backups = new Map([...rows].map(([key, row]) => [key, row.bytes]));
  const initial: ModelState = { vms: new Set(VMS), tpms: new Set(VMS), rows, disk, backups };
  return { uuids, initial };
}

/** Starts one operation as the flow it stands for. */
function start(fleet: Fleet, deps: FlowDeps, uuids: ReadonlyMap<string, string>, op: ModelOp): Promise<unknown> {
  switch (op.kind) {
    case 'write': {
      const path = realPath(fleet, uuids, op.at, op.type, op.moved);
      return writeFile(deps, { vm: op.vm, type: op.type, path, state: fileState(Buffer.from(op.bytes)) });
    }
    case 'sync':
      return syncVm(deps, op.vm);
    case 'removeTpm':
      return removeTpms(deps, [op.vm]);
    case 'destroy':
      return destroyVm(deps, op.vm);
    case 'retry':
      return retryPendingDeletions(deps, { all: true });
    case 'reconcile':
      return reconcileHost(deps, `host${op.host}`, { apply: true });
  }
}

/** Names for what the real end state carries: uuids to VM names, real paths and digests to the model's labels. */
interface Labels {
  readonly vmOf: ReadonlyMap<string, string>;
  readonly pathOf: ReadonlyMap<string, string>;
  readonly bytesOf: ReadonlyMap<string, string>;
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

function labels(fleet: Fleet, uuids: ReadonlyMap<string, string>, ops: readonly ModelOp[]): Labels {
  const pathOf = new Map<string, string>();
  const bytes = VMS.flatMap((vm) => [...TYPES.map((type) => initBytes(vm, type)), firstNvram(vm)]);
  for (const vm of VMS) {
    for (const [type, moved] of [
      ['TpmState', false],
      ['NvRam', false],
      ['NvRam', true],
    ] as const) {
      pathOf.set(realPath(fleet, uuids, vm, type, moved), LAYOUT.pathLabel(vm, type, moved));
    }
  }
  for (const op of ops) if (op.kind === 'write') bytes.push(op.bytes);
  return {
    vmOf: new Map([...uuids].map(([name, uuid]) => [uuid, name])),
    pathOf,
    bytesOf: new Map(bytes.map((b) => [sha256(b), b])),
  };
}

/** The real end state in the model's terms; anything it cannot name keeps its raw value, so it fails to compare. */
async function observe(fleet: Fleet, uuids: ReadonlyMap<string, string>, names: Labels): Promise<ModelState> {
  const { store } = fleet;
  const name = (uuid: string): string => names.vmOf.get(uuid) ?? uuid;
  const path = (p: string): string => names.pathOf.get(p) ?? p;
  const bytes = (sha: string): string => names.bytesOf.get(sha) ?? sha;
  const hostIndex = new Map<string, number>();
  for (const i of fleet.agents.keys()) {
    const host = await store.getHostByName(`host${i}`);
    if (host !== null) hostIndex.set(host.uuid, i);
  }
  const all = [...uuids.values()];
  const vms = (await store.listVms()).map((vm) => vm.name);
  const tpms = (await store.listTpmsByVms(all)).map((tpm) => name(tpm.vmUuid));
  const rows = new Map(
    (await store.listFilesByVms(all)).map((row) => [
      `${name(row.vmUuid)} ${row.type}`,
      { host: hostIndex.get(row.hostUuid) ?? -1, path: path(row.path), bytes: bytes(row.sha256) },
    ]),
  );
  const backups = new Map(
    (await store.listBackupsByVms(all)).map((b) => [`${name(b.vmUuid)} ${b.type}`, bytes(b.sha256)]),
  );
  const disk = new Map<string, string>();
  for (const [i, agent] of fleet.agents.entries()) {
    for (const file of [...filesBelow(agent.setup.roots.TpmState), ...filesBelow(agent.setup.roots.NvRam)]) {
      disk.set(`host${i} ${names.pathOf.get(file) ?? basename(file)}`, readFileSync(file, 'utf8'));
    }
  }
  return { vms: new Set(vms), tpms: new Set(tpms), rows, disk, backups };
}

/** A flow may be refused (its VM destroyed or its TPM removed first), with a flow error: never anything else. */
function assertOnlyRefusals(ops: readonly ModelOp[], outcomes: readonly PromiseSettledResult<unknown>[]): void {
  outcomes.forEach((outcome, i) => {
    if (outcome.status === 'rejected') {
      assert.ok(isFlowError(outcome.reason), `${JSON.stringify(ops[i])} failed with ${String(outcome.reason)}`);
    }
  });
}

const SEEDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

for (const seed of SEEDS) {
  test(`eleven flows of every kind at once on overlapping VMs end as some serial order does (seed ${seed})`, async () => {
    await withFleet(2, async (fleet) => {
      const ops = opsFor(seed);
      const { uuids, initial } = await setUp(fleet);
      const outcomes = await Promise.allSettled(ops.map((op) => start(fleet, fleet.deps, uuids, op)));
      assertOnlyRefusals(ops, outcomes);
      // Drained as the retry worker would: then every serial order's invariants hold (nothing on disk unaccounted
      // for, no row without its file, nothing pending, nothing left running).
      await retryPendingDeletions(fleet.deps, { all: true });
      await assertEndState(fleet, fleet.deps);

      const observed = describe(await observe(fleet, uuids, labels(fleet, uuids, ops)));
      const serial = serialEndStates(initial, ops, LAYOUT);
      assert.ok(
        serial.has(observed),
        `ops ${JSON.stringify(ops)}\nend state ${observed}\nis none of the ${serial.size} serial end states:\n` +
          [...serial].join('\n'),
      );
    });
  });
}

// A sequential model of the flows the concurrency-model test runs at once: each operation's effect on an abstract
// end state (VMs, TPMs, rows, files on disk, backups), and every end state some serial order of the operations gives.
// Names stand for uuids and labels for bytes and paths, so the real end state, normalized the same way, compares.

export type StateType = 'TpmState' | 'NvRam';

export type ModelOp =
  /**
   * writes `bytes` (the label is the content) for `vm` at the first path of that type, or the `moved` NvRam path, of
   * `at` (the VM itself, or another VM on its host: a path that VM holds, or held before it was deleted)
   */
  | {
      readonly kind: 'write';
      readonly vm: string;
      readonly at: string;
      readonly type: StateType;
      readonly moved: boolean;
      readonly bytes: string;
    }
  | { readonly kind: 'sync'; readonly vm: string }
  | { readonly kind: 'removeTpm'; readonly vm: string }
  | { readonly kind: 'destroy'; readonly vm: string }
  | { readonly kind: 'retry' }
  | { readonly kind: 'reconcile'; readonly host: number };

/** A row: where a VM's state of a type is recorded, and what it holds. */
export interface ModelRow {
  readonly host: number;
  readonly path: string;
  readonly bytes: string;
}

export interface ModelState {
  readonly vms: ReadonlySet<string>;
  readonly tpms: ReadonlySet<string>;
  /** by `<vm> <type>` */
  readonly rows: ReadonlyMap<string, ModelRow>;
  /** by `host<i> <path label>`: the files below the agents' roots once the outbox is drained */
  readonly disk: ReadonlyMap<string, string>;
  /** by `<vm> <type>`: the backup's bytes */
  readonly backups: ReadonlyMap<string, string>;
}

/** Where the model's VMs live, and the path labels of their states (the test maps a label to a real path). */
export interface ModelLayout {
  home(vm: string): number;
  pathLabel(vm: string, type: StateType, moved: boolean): string;
}

const TYPES: readonly StateType[] = ['TpmState', 'NvRam'];
const rowKey = (vm: string, type: StateType): string => `${vm} ${type}`;
const diskKey = (host: number, path: string): string => `host${host} ${path}`;

/**
 * One operation run alone, on live agents, followed (as the test does) by a drain of the outbox. A flow that would be
 * refused (its VM gone, a removal of a TPM already removed) changes nothing. Retry and reconcile are identities: run
 * alone, every deletion a flow sends is confirmed at once, the outbox holds only the earlier path of a moved state
 * (which the final drain deletes anyway, so the model deletes it at the write), and nothing on disk is unaccounted
 * for, so reconcile schedules nothing.
 */
export function applyOp(state: ModelState, op: ModelOp, layout: ModelLayout): ModelState {
  switch (op.kind) {
    case 'write':
      return state.vms.has(op.vm) ? write(state, op, layout) : state;
    case 'sync':
      return state.vms.has(op.vm) ? sync(state, op.vm) : state;
    case 'removeTpm':
      // A removal needs the TPM; UEFI without secure boot needs no NVRAM after it, so both types go.
      return state.tpms.has(op.vm) ? forget(state, op.vm, { vm: false, tpm: true }) : state;
    case 'destroy':
      return state.vms.has(op.vm) ? forget(state, op.vm, { vm: true, tpm: true }) : state;
    case 'retry':
    case 'reconcile':
      return state;
  }
}

function write(state: ModelState, op: Extract<ModelOp, { kind: 'write' }>, layout: ModelLayout): ModelState {
  const host = layout.home(op.vm);
  const path = layout.pathLabel(op.at, op.type, op.moved);
  // A path that is another VM's state is refused before anything is sent.
  if ([...state.rows.values()].some((row) => row.host === host && row.path === path && !isOwn(state, op, row)))
    return state;
  const rows = new Map(state.rows);
  const disk = new Map(state.disk);
  const earlier = rows.get(rowKey(op.vm, op.type));
  // The VM's earlier path of that type goes through the outbox: gone once drained.
  if (earlier !== undefined && earlier.path !== path) disk.delete(diskKey(earlier.host, earlier.path));
  disk.set(diskKey(host, path), op.bytes);
  rows.set(rowKey(op.vm, op.type), { host, path, bytes: op.bytes });
  // A write onto the VM's own host is a capture: its newest generation.
  const backups = new Map(state.backups).set(rowKey(op.vm, op.type), op.bytes);
  return { ...state, rows, disk, backups };
}

const isOwn = (state: ModelState, op: { vm: string; type: StateType }, row: ModelRow): boolean =>
  state.rows.get(rowKey(op.vm, op.type)) === row;

function sync(state: ModelState, vm: string): ModelState {
  const backups = new Map(state.backups);
  for (const type of TYPES) {
    const row = state.rows.get(rowKey(vm, type));
    if (row !== undefined) backups.set(rowKey(vm, type), row.bytes);
  }
  return { ...state, backups };
}

/** Every state of the VM deleted, its rows and backups gone, its TPM removed, and with `vm` the VM itself. */
function forget(state: ModelState, vm: string, what: { vm: boolean; tpm: boolean }): ModelState {
  const rows = new Map(state.rows);
  const disk = new Map(state.disk);
  const backups = new Map(state.backups);
  for (const type of TYPES) {
    const row = rows.get(rowKey(vm, type));
    if (row !== undefined) disk.delete(diskKey(row.host, row.path));
    rows.delete(rowKey(vm, type));
    backups.delete(rowKey(vm, type));
  }
  const vms = new Set(state.vms);
  const tpms = new Set(state.tpms);
  if (what.vm) vms.delete(vm);
  if (what.tpm) tpms.delete(vm);
  return { vms, tpms, rows, disk, backups };
}

/** One canonical string per end state: what two states are compared by. */
export function describe(state: ModelState): string {
  const sorted = <T>(entries: Iterable<[string, T]>): [string, T][] =>
    [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify(
    {
      vms: [...state.vms].sort(),
      tpms: [...state.tpms].sort(),
      rows: sorted(state.rows),
      disk: sorted(state.disk),
      backups: sorted(state.backups),
    },
    null,
    1,
  );
}

/**
 * Every end state of some serial order of `ops` from `initial`. Orders that reach one state after the same subset of
 * operations go on alike, so states are kept per subset (a bit mask): 2^n subsets of a few states each, not n!
 * orders. Every order is allowed, not only those the queue can produce: the queue keeps flows sharing a key in the
 * order they claimed, but a flow claims only after reading the store (its VM, its paths), so the claim order is not
 * the order the test started them in and cannot be known from outside. Flows with disjoint keys may reorder freely.
 */
export function serialEndStates(initial: ModelState, ops: readonly ModelOp[], layout: ModelLayout): Set<string> {
  let layer = new Map<string, ModelState>([[`0|${describe(initial)}`, initial]]);
  const masks = new Map<string, number>([[`0|${describe(initial)}`, 0]]);
  for (let done = 0; done < ops.length; done++) {
    const next = new Map<string, ModelState>();
    for (const [key, state] of layer) {
      const mask = masks.get(key) ?? 0;
      ops.forEach((op, i) => {
        if ((mask & (1 << i)) !== 0) return;
        const after = applyOp(state, op, layout);
        const nextKey = `${mask | (1 << i)}|${describe(after)}`;
        next.set(nextKey, after);
        masks.set(nextKey, mask | (1 << i));
      });
    }
    layer = next;
  }
  return new Set([...layer.values()].map(describe));
}

// The records the controller keeps and the interface flows use to keep them; no SQL leaks through here.
// Records use camelCase and times in integer milliseconds since the Unix epoch.
// Bookkeeping stamps (createdAt, updatedAt) come from the store's clock; times that mean something to a flow
// (lastSeenAt, lastSyncAt, nextAttemptAt, "now" of a due query) are the flow's arguments.
import type { FileType, StateKind } from '@hostfiles/shared';

export type { FileType, StateKind };

export const HOST_STATES = ['Connected', 'Disconnected'] as const;
export type HostState = (typeof HOST_STATES)[number];
export const BOOT_MODES = ['Legacy', 'UEFI'] as const;
export type BootMode = (typeof BOOT_MODES)[number];
export const KEY_BINDING_STATES = ['attached', 'detaching'] as const;
export type KeyBindingState = (typeof KEY_BINDING_STATES)[number];
export const OPERATION_STATES = ['running', 'done', 'failed'] as const;
export type OperationState = (typeof OPERATION_STATES)[number];
/** The kinds of journaled flow, each flow's name for its operations (flows/*.ts take theirs from here). */
export const OPERATION_KIND = {
  removeTpm: 'tpm.remove',
  destroyVm: 'vm.destroy',
  syncVm: 'vm.sync',
  restoreVm: 'vm.restore',
  recoverVm: 'vm.recover',
  adoptVm: 'vm.adopt',
  reconcileHost: 'host.reconcile',
  repinHost: 'host.repin',
  removeHost: 'host.remove',
  syncFleet: 'fleet.sync',
  writeFile: 'file.write',
} as const;
export type OperationKind = (typeof OPERATION_KIND)[keyof typeof OPERATION_KIND];
/** What `ops list --kind` takes. */
export const OPERATION_KINDS: readonly OperationKind[] = Object.values(OPERATION_KIND);

export interface Host {
  readonly uuid: string;
  readonly name: string;
  readonly url: string;
  /** The agent's pinned Ed25519 public key, base64 of 32 bytes. */
  readonly publicKey: string;
  readonly keyId: string;
  /**
   * The agent's pinned TLS certificate (PEM): the only one its https:// URL is trusted with. Null for plain HTTP (and
   * for an https:// URL of a host added before TLS, checked against the system's CAs as then).
   */
  readonly certificate: string | null;
  readonly state: HostState;
  readonly lastSeenAt: number | null;
  readonly createdAt: number;
}
export type NewHost = Omit<Host, 'createdAt'>;
/** What pinning an agent stores: its key and the certificate it derives from it. */
export type HostKey = Pick<Host, 'publicKey' | 'keyId' | 'certificate'>;

export interface Vm {
  readonly uuid: string;
  readonly name: string;
  /** The host the VM lives on now; null when it is placed nowhere. */
  readonly hostUuid: string | null;
  readonly bootMode: BootMode;
  readonly secureBoot: boolean;
  /**
   * The fencing epoch of the VM's ownership by its host: 0 when added, one more on every move, restore and recover.
   * A capture is recorded only from the current host at the epoch its flow read (docs/DESIGN.md, "Generations and
   * fencing").
   */
  readonly epoch: number;
  readonly createdAt: number;
}
export type NewVm = Omit<Vm, 'createdAt' | 'epoch'>;

export interface Tpm {
  readonly uuid: string;
  readonly vmUuid: string;
  readonly createdAt: number;
}

/** The key-provider binding of a TPM; it outlives the TPM row while the TPM's state files are pending deletion. */
export interface KeyBinding {
  readonly tpmUuid: string;
  readonly vmUuid: string;
  readonly keyProvider: string;
  readonly state: KeyBindingState;
  readonly createdAt: number;
}

export interface NewTpm {
  readonly uuid: string;
  readonly vmUuid: string;
  readonly keyProvider: string;
}

export interface TpmWithBinding {
  readonly tpm: Tpm;
  readonly binding: KeyBinding;
}

/**
 * The state of a VM on one host: a file (NVRAM) or a directory (a vTPM's `<root>/<uuid>/`). At most one per
 * (vm, host, type) and one per (host, path).
 */
export interface VmHostFile {
  readonly uuid: string;
  readonly vmUuid: string;
  readonly hostUuid: string;
  readonly type: FileType;
  readonly path: string;
  readonly kind: StateKind;
  /** Lowercase hex: a file's sha256, or a directory's state digest. */
  readonly sha256: string;
  /** a file's size, or the sum of a directory's files */
  readonly size: number;
  readonly lastSyncAt: number;
}

export interface UpsertFileResult {
  /** The row as stored; it keeps the uuid of the row it replaced, if any. */
  readonly file: VmHostFile;
  /** The row for the same (vm, host, type) before this upsert; if its path differs, that old file is now orphaned. */
  readonly previous: VmHostFile | null;
  /**
   * The pending deletions this upsert cancelled, in the same transaction: the one at the same (host, path), and any
   * below it (the state written there replaced them).
   */
  readonly cancelled: readonly PendingDeletion[];
}

export const CONTENT_STORAGE = ['identity', 'gzip'] as const;
export type ContentStorage = (typeof CONTENT_STORAGE)[number];

/** One file of a backed-up state, stored as it travels: `content` is the bytes, or their gzip. */
export interface BackupEntry {
  /** relative to the state directory; '' for a file state */
  readonly path: string;
  readonly content: Buffer;
  readonly encoding: ContentStorage;
  /** of the bytes themselves */
  readonly sha256: string;
  readonly size: number;
}

/** What captured a generation; 'migrated': the one backup a database held before generations. */
export const GENERATION_SOURCES = ['sync', 'adopt', 'write', 'migrated'] as const;
export type GenerationSource = (typeof GENERATION_SOURCES)[number];

/** How many generations of a (vm, type) are kept while the database's setting is unset (`hostfiles state keep`). */
export const DEFAULT_KEEP_GENERATIONS = 5;
/** The most generations of a (vm, type) the setting may keep. */
export const MAX_KEEP_GENERATIONS = 9999;

/**
 * A controller-side copy of a VM's state of one type, one generation of it: no path. Its entries are read on their
 * own. Generations of a (vm, type) are numbered from 1, monotonic, never reused while the VM exists.
 */
export interface BackupFile {
  readonly uuid: string;
  readonly vmUuid: string;
  readonly type: FileType;
  readonly generation: number;
  readonly kind: StateKind;
  /** a file's sha256, or a directory's state digest */
  readonly sha256: string;
  readonly size: number;
  readonly source: GenerationSource;
  /** the host it was captured from (read, or written to); null once that host was removed, or before generations */
  readonly hostUuid: string | null;
  readonly capturedAt: number;
}
export type NewBackupFile = Omit<BackupFile, 'generation' | 'capturedAt'> & {
  readonly entries: readonly BackupEntry[];
};

export interface RecordGenerationResult {
  /** the generation made, or the newest one when it already held exactly this state (nothing was made) */
  readonly backup: BackupFile;
  readonly created: boolean;
  /** the generations dropped to keep the last N: oldest first */
  readonly pruned: readonly number[];
}

/** A (host, path) hostfiles has put state at or taken charge of, until its deletion is confirmed. */
export interface OwnedPath {
  readonly hostUuid: string;
  readonly path: string;
  readonly type: FileType;
  readonly vmUuid: string;
  readonly createdAt: number;
}
export type NewOwnedPath = Omit<OwnedPath, 'createdAt'>;

/** A host-side deletion not yet confirmed: the outbox the retry worker drains. */
export interface PendingDeletion {
  /** Never reused (AUTOINCREMENT), so a stale id can never name a newer row. */
  readonly id: number;
  readonly hostUuid: string;
  readonly type: FileType;
  readonly path: string;
  readonly vmUuid: string;
  /**
   * The VM's name when the deletion was scheduled (the store reads it then), so a destroyed VM's deletions still say
   * whose they were; null for state of no VM known (an orphan reconcile found), and for rows older than the column.
   */
  readonly vmName: string | null;
  /** The removed TPM whose binding waits for this deletion; null for files of no TPM (NVRAM, destroyed VMs). */
  readonly tpmUuid: string | null;
  readonly attempts: number;
  readonly nextAttemptAt: number;
  readonly lastError: string | null;
  /**
   * Delete only while the path holds this digest (a write whose outcome is unknown, an orphan as reconcile saw it);
   * null: delete whatever is there.
   */
  readonly expectSha256: string | null;
  readonly createdAt: number;
}
export type NewPendingDeletion = Omit<PendingDeletion, 'id' | 'vmName' | 'attempts' | 'createdAt' | 'expectSha256'> & {
  readonly expectSha256?: string | null;
};

export interface PendingDeletionFilter {
  readonly hostUuid?: string;
  readonly vmUuid?: string;
  readonly tpmUuid?: string;
  readonly path?: string;
}

export interface DueDeletionOptions {
  readonly hostUuid?: string;
  /** At most this many rows, earliest first (e.g. the 1000 ops one command may carry). */
  readonly limit?: number;
}

/** One journaled flow. `input` and `report` are any JSON value; the store stores and returns them as given. */
export interface Operation {
  readonly id: string;
  readonly kind: string;
  readonly subject: string;
  readonly step: string;
  readonly state: OperationState;
  readonly input: unknown;
  /** null until a step or the end records one. */
  readonly report: unknown;
  readonly createdAt: number;
  readonly updatedAt: number;
}
/** A flow's new operation: its kind one of OPERATION_KIND's, so `ops list --kind` and its names know every one. */
export type NewOperation = Pick<Operation, 'id' | 'subject' | 'step' | 'input'> & { readonly kind: OperationKind };

/** A running controller process, as the others see it. */
export interface LiveController {
  /** random per process start, never reused: the fencing token of everything the process writes */
  readonly id: string;
  readonly host: string;
  readonly pid: number;
  readonly startedAt: number;
  readonly expiresAt: number;
}
export type NewController = LiveController;

/** A lock key a flow holds across processes (flows/lock-keys.ts). */
export interface LeaseKey {
  readonly key: string;
  readonly mode: 'shared' | 'exclusive';
}

/** Which operations `listOperations` answers: those of a state and kind, when given; at most `limit`, newest first. */
export interface OperationFilter {
  readonly state?: OperationState;
  readonly kind?: string;
  /** a whole number from 1 (a RangeError otherwise) */
  readonly limit: number;
}

/**
 * Reads. Lists are ordered deterministically. `get…` answers null when there is no such row.
 */
export interface StoreReads {
  getHost(uuid: string): Promise<Host | null>;
  getHostByName(name: string): Promise<Host | null>;
  listHosts(): Promise<Host[]>;
  getVm(uuid: string): Promise<Vm | null>;
  getVmByName(name: string): Promise<Vm | null>;
  listVms(filter?: { readonly hostUuid?: string }): Promise<Vm[]>;
  getTpmByVm(vmUuid: string): Promise<Tpm | null>;
  /** The TPMs of those VMs (batched reads, for flows over many VMs). */
  listTpmsByVms(vmUuids: readonly string[]): Promise<Tpm[]>;
  getKeyBinding(tpmUuid: string): Promise<KeyBinding | null>;
  listKeyBindings(filter?: { readonly state?: KeyBindingState }): Promise<KeyBinding[]>;
  listFilesByVm(vmUuid: string, type?: FileType): Promise<VmHostFile[]>;
  listFilesByVms(vmUuids: readonly string[]): Promise<VmHostFile[]>;
  listFilesByHost(hostUuid: string): Promise<VmHostFile[]>;
  /**
   * The newest generation of each type (the VM's backup), without content (a removal of a thousand VMs reads no
   * blob).
   */
  listBackupsByVm(vmUuid: string, type?: FileType): Promise<BackupFile[]>;
  listBackupsByVms(vmUuids: readonly string[]): Promise<BackupFile[]>;
  /** Every generation kept, without content: by type, newest first. */
  listGenerations(vmUuid: string, type?: FileType): Promise<BackupFile[]>;
  getGeneration(vmUuid: string, type: FileType, generation: number): Promise<BackupFile | null>;
  /** The files of one backup, content included, by path. */
  listBackupEntries(backupUuid: string): Promise<BackupEntry[]>;
  listOwnedPaths(hostUuid: string): Promise<OwnedPath[]>;
  listPendingDeletions(filter?: PendingDeletionFilter): Promise<PendingDeletion[]>;
  /** Rows with nextAttemptAt ≤ now, ordered by host, then nextAttemptAt. */
  listDueDeletions(now: number, options?: DueDeletionOptions): Promise<PendingDeletion[]>;
  /** The earliest nextAttemptAt (of one host, if given); null when nothing is pending. */
  nextDeletionDueAt(hostUuid?: string): Promise<number | null>;
  /** How many deletions are pending, and the createdAt of the oldest (null when none): one aggregate, for metrics. */
  deletionStats(): Promise<{ count: number; oldestCreatedAt: number | null }>;
  countPendingDeletionsForTpm(tpmUuid: string): Promise<number>;
  /** Of these TPMs, those with any deletion pending (batched, for removals of many VMs). */
  listTpmsWithPendingDeletions(tpmUuids: readonly string[]): Promise<string[]>;
  getOperation(id: string): Promise<Operation | null>;
  listUnfinishedOperations(): Promise<Operation[]>;
  /** The controllers alive at `now` (or within `graceMs` after their expiry), by id. */
  listLiveControllers(now: number, graceMs?: number): Promise<LiveController[]>;
  /** Which controller holds each of these keys. */
  listLeaseHolders(keys: readonly string[]): Promise<{ key: string; controllerId: string }[]>;
  /** Newest first: by createdAt, then id, both descending. */
  listOperations(filter: OperationFilter): Promise<Operation[]>;
  /** How many generations of each (vm, type) are kept: the database's setting, DEFAULT_KEEP_GENERATIONS unset. */
  getKeepGenerations(): Promise<number>;
}

/**
 * Writes. A method naming one row (set…, remove…, finish…) throws StoreError 'not_found' when it is absent;
 * batch deletes by ids are idempotent and answer how many rows went.
 */
export interface StoreWrites {
  addHost(host: NewHost): Promise<Host>;
  /** Sets the state, and lastSeenAt when `seenAt` is given; answers the previous state (to notice a host coming back). */
  setHostState(uuid: string, state: HostState, seenAt?: number): Promise<HostState>;
  /** Points the host at another URL with its pinned certificate (the agent's key and uuid stay pinned). */
  setHostEndpoint(uuid: string, url: string, certificate: string | null): Promise<void>;
  /**
   * Pins another agent key (and its TLS certificate) for the host: its agent's key was regenerated. The uuid, name
   * and URL stay.
   */
  setHostKey(uuid: string, key: HostKey): Promise<void>;
  /** Refused ('constraint') while a VM, a file row or a pending deletion still names the host. */
  removeHost(uuid: string): Promise<void>;
  addVm(vm: NewVm): Promise<Vm>;
  /** Points the VM at its host and raises its epoch (even to the same host: a move is a new ownership). */
  setVmHost(uuid: string, hostUuid: string | null): Promise<number>;
  /** Raises the VM's epoch (a restore); answers the new one. */
  bumpVmEpoch(uuid: string): Promise<number>;
  /** Refused ('constraint') while the VM has a TPM or file rows; its backups go with it. */
  removeVm(uuid: string): Promise<void>;
  /** The TPM row and its 'attached' key binding, together. */
  addTpm(tpm: NewTpm): Promise<TpmWithBinding>;
  /** The TPM row only: its binding stays until the flow detaches it. */
  removeTpm(uuid: string): Promise<void>;
  setKeyBindingState(tpmUuid: string, state: KeyBindingState): Promise<void>;
  /** Batch forms, idempotent: they answer how many rows changed. */
  removeTpms(uuids: readonly string[]): Promise<number>;
  setKeyBindingsState(tpmUuids: readonly string[], state: KeyBindingState): Promise<number>;
  deleteKeyBindings(tpmUuids: readonly string[]): Promise<number>;
  deleteKeyBinding(tpmUuid: string): Promise<void>;
  /**
   * Inserts or updates the row of (vm, host, type), deletes the pending deletions at (host, path) and below it, and
   * takes charge of the path (owned paths).
   */
  upsertFile(file: VmHostFile): Promise<UpsertFileResult>;
  deleteFiles(uuids: readonly string[]): Promise<number>;
  /**
   * Records a capture as the next generation of (vm, type), unless the newest generation already holds exactly this
   * state (kind and digest): then nothing is made. Then drops the oldest generations beyond the database's setting
   * (getKeepGenerations, read in the same transaction): the newest is never dropped.
   */
  recordGeneration(backup: NewBackupFile): Promise<RecordGenerationResult>;
  /** Every generation of the VM (of those types, or all), entries included; answers how many went. */
  deleteGenerations(vmUuid: string, types?: readonly FileType[]): Promise<number>;
  /** Idempotent: a path already owned keeps its first record. */
  addOwnedPaths(rows: readonly NewOwnedPath[]): Promise<void>;
  /** Forgets these paths of the host (their deletion was confirmed); answers how many went. */
  removeOwnedPaths(hostUuid: string, paths: readonly string[]): Promise<number>;
  deleteBackups(uuids: readonly string[]): Promise<number>;
  /**
   * Inserts the rows; one already pending at the same (host, path) is kept (attempts, id) and refreshed: type and
   * vm from the new row, tpm unless the new row has none, the earlier nextAttemptAt, the newer lastError if any.
   */
  addPendingDeletions(rows: readonly NewPendingDeletion[]): Promise<PendingDeletion[]>;
  /** attempts + 1, the next attempt and the error. False when the row is gone (confirmed or cancelled meanwhile). */
  markDeletionFailed(
    id: number,
    retry: { readonly nextAttemptAt: number; readonly lastError: string },
  ): Promise<boolean>;
  deletePendingDeletions(ids: readonly number[]): Promise<number>;
  startOperation(operation: NewOperation): Promise<Operation>;
  /** Only a running operation; `report`, when given, replaces the stored one. 'conflict' if it already finished. */
  setOperationStep(id: string, step: string, report?: unknown): Promise<void>;
  /** Only a running operation; 'conflict' if it already finished. */
  finishOperation(id: string, state: 'done' | 'failed', report: unknown): Promise<void>;
  /** A controller process starts: alive until `expiresAt` unless renewed. */
  registerController(controller: NewController): Promise<void>;
  /** Pushes its expiry; false once it has expired or was retired: it is dead for good, its process must stop. */
  renewController(id: string, now: number, expiresAt: number): Promise<boolean>;
  /** A clean stop: the controller and its leases go; its running operations become orphans. */
  retireController(id: string): Promise<void>;
  /**
   * Every key for `holder` (one flow of `controllerId`), or none (false) while another live controller holds one in
   * a conflicting mode. Leases of controllers dead for longer than `graceMs` are dropped first.
   */
  tryAcquireLeases(
    holder: string,
    controllerId: string,
    keys: readonly LeaseKey[],
    now: number,
    graceMs: number,
  ): Promise<boolean>;
  releaseLeases(holder: string): Promise<number>;
  /** The running operations of controllers dead for longer than `graceMs` (or of none), now `controllerId`'s. */
  claimOrphanOperations(controllerId: string, now: number, graceMs: number): Promise<Operation[]>;
  /** Refuses ('conflict') unless the controller is alive at `now`. */
  checkFence(controllerId: string, now: number): Promise<void>;
  /**
   * Sets how many generations of each (vm, type) are kept, from 1 to MAX_KEEP_GENERATIONS (a RangeError otherwise).
   * Nothing is dropped here: each (vm, type)'s next capture prunes to it.
   */
  setKeepGenerations(keep: number): Promise<void>;
}

/** What a transaction's callback gets: every read and write, all inside one BEGIN IMMEDIATE … COMMIT. */
export interface StoreTx extends StoreReads, StoreWrites {}

/**
 * The store. Each read and write called on it directly runs alone (each write in its own transaction); several
 * that must hold together go through `transaction`. Transactions and reads are queued one at a time per store.
 * Inside a transaction use only its `tx`: calling the store itself there is refused (it would wait on itself).
 * Never await the network inside a transaction: it holds the database's write lock.
 */
export interface Store extends StoreReads, StoreWrites {
  /** Runs `fn` in BEGIN IMMEDIATE … COMMIT, or ROLLBACK when it throws (the error is rethrown). */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T>;
  /**
   * From now on, this store acts for controller `id` (registered): operations it starts name it, and every write
   * transaction first checks that it is still alive (its fence), so a controller the others took for dead writes
   * nothing more. null: no controller (a single process: tests, the demo).
   */
  actAs(id: string | null): void;
  /** Waits for the queued work, then closes the database; later calls fail with 'io'. */
  close(): Promise<void>;
}

/** Names for display; a row that is gone (a destroyed VM's pending deletion) shows its uuid. */
export interface Names {
  host(uuid: string | null): string;
  vm(uuid: string): string;
  /** whether a VM of this uuid exists (a VM may be named by its own uuid: `vm` can't tell) */
  hasVm(uuid: string): boolean;
}

export async function loadNames(store: Pick<StoreReads, 'listHosts' | 'listVms'>): Promise<Names> {
  const hosts = new Map((await store.listHosts()).map((h) => [h.uuid, h.name]));
  const vms = new Map((await store.listVms()).map((v) => [v.uuid, v.name]));
  return namesFrom(hosts, vms);
}

function namesFrom(hosts: ReadonlyMap<string, string>, vms: ReadonlyMap<string, string>): Names {
  return {
    host: (uuid) => (uuid === null ? '-' : (hosts.get(uuid) ?? uuid)),
    vm: (uuid) => vms.get(uuid) ?? uuid,
    hasVm: (uuid) => vms.has(uuid),
  };
}

/**
 * The `vmUuid` of the outbox rows reconcile's `apply` makes for unknown state: the nil UUID, which no VM has.
 * Orphans carry the VM that hostfiles last wrote them for, so their deletion is serialized with that VM's flows.
 * pending_deletions.vm_uuid is NOT NULL without a foreign key; `tpmUuid` is null: no key binding waits on these.
 */
export const ORPHAN_VM_UUID = '00000000-0000-0000-0000-000000000000';

/**
 * A pending deletion as `pending list --json` and `GET /v1/pending` give it: `vmName` is the VM's name now, else the
 * one it had when the deletion was scheduled, else null (unknown state; a VM destroyed before names were kept), and
 * `vmDestroyed` says its row is gone.
 */
export type ListedPendingDeletion = PendingDeletion & { readonly vmDestroyed: boolean };

export function namePending(row: PendingDeletion, names: Names): ListedPendingDeletion {
  const exists = names.hasVm(row.vmUuid);
  return {
    ...row,
    vmName: exists ? names.vm(row.vmUuid) : row.vmName,
    vmDestroyed: !exists && row.vmUuid !== ORPHAN_VM_UUID,
  };
}

/** What each kind's subject holds: a VM's uuid (a removal's: its VMs', comma-separated), a host's, or `fleet`. */
const SUBJECT_OF: Readonly<Record<OperationKind, 'vm' | 'host' | 'fleet'>> = {
  [OPERATION_KIND.removeTpm]: 'vm',
  [OPERATION_KIND.destroyVm]: 'vm',
  [OPERATION_KIND.syncVm]: 'vm',
  [OPERATION_KIND.restoreVm]: 'vm',
  [OPERATION_KIND.recoverVm]: 'vm',
  [OPERATION_KIND.adoptVm]: 'vm',
  [OPERATION_KIND.writeFile]: 'vm',
  [OPERATION_KIND.reconcileHost]: 'host',
  [OPERATION_KIND.repinHost]: 'host',
  [OPERATION_KIND.removeHost]: 'host',
  [OPERATION_KIND.syncFleet]: 'fleet',
};

export const isOperationKind = (kind: string): kind is OperationKind =>
  (OPERATION_KINDS as readonly string[]).includes(kind);

/** An operation as `ops list --json` and `GET /v1/operations` give it: its uuids in `subject`, names beside them. */
export type NamedOperation = Operation & { readonly subjectName: string };

/**
 * An operation's subject as an operator reads it: each VM's or host's name (as its kind tells which) while its row
 * exists, else its uuid (a destroyed VM, a removed host). The journal keeps the uuids: a name can be given again.
 */
export function nameOperation(operation: Operation, names: Names): NamedOperation {
  const { of, uuids } = subjectOf(operation);
  const subjectName =
    of === 'fleet'
      ? operation.subject
      : uuids.map((uuid) => (of === 'vm' ? names.vm(uuid) : names.host(uuid))).join(',');
  return { ...operation, subjectName };
}

/** What an operation's subject holds: VM uuids, host uuids, or a text of the fleet's (no uuids). */
function subjectOf(operation: Operation): { of: 'vm' | 'host' | 'fleet'; uuids: readonly string[] } {
  const of = isOperationKind(operation.kind) ? SUBJECT_OF[operation.kind] : 'fleet';
  return { of, uuids: of === 'fleet' ? [] : operation.subject.split(',') };
}

/** Past this many uuids in one subject (a `tpm remove` of many VMs), two whole-table reads beat a read per row. */
const SUBJECT_ROWS_READ_ONE_BY_ONE = 32;

/**
 * The names one operation's subject needs (GET /v1/operations/{id}): a row read for each, not every host and VM,
 * unless the subject names more than SUBJECT_ROWS_READ_ONE_BY_ONE.
 */
export async function loadSubjectNames(
  store: Pick<StoreReads, 'getHost' | 'getVm' | 'listHosts' | 'listVms'>,
  operation: Operation,
): Promise<Names> {
  const subject = subjectOf(operation);
  const { of } = subject;
  const uuids = [...new Set(subject.uuids)];
  if (uuids.length > SUBJECT_ROWS_READ_ONE_BY_ONE) return loadNames(store);
  const hosts = new Map<string, string>();
  const vms = new Map<string, string>();
  for (const uuid of uuids) {
    const row = of === 'vm' ? await store.getVm(uuid) : await store.getHost(uuid);
    if (row !== null) (of === 'vm' ? vms : hosts).set(uuid, row.name);
  }
  return namesFrom(hosts, vms);
}

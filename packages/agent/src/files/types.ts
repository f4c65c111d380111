// The public shapes of the agent's file store.
import type { Expectation, FileType, ListEntry, OpErrorCode, ReadEntry, UnitFacts } from '@hostfiles/shared';
import type { DirHandle } from './dir-handle.js';
import type { ListBudget } from './units.js';

/** Absolute, normalized, existing directories with no symbolic link on their paths; trusted configuration. */
export interface FileRoots {
  readonly TpmState: string;
  readonly NvRam: string;
}

/**
 * How one root's files and directories are laid out, as libvirt does it: files get uid:gid and fileMode; a
 * directory made directly below the root (`<uuid>/`) keeps the agent's own owner with topDirMode; deeper
 * directories (`tpm2/`) get uid:gid and dirMode. An unset uid or gid is left as the agent's.
 */
export interface RootOwnership {
  readonly uid?: number;
  readonly gid?: number;
  readonly fileMode: number;
  readonly dirMode: number;
  readonly topDirMode: number;
}

export type Ownerships = Readonly<Record<FileType, RootOwnership>>;

export type OpFailure = {
  readonly status: 'failed';
  readonly error: { readonly code: OpErrorCode; readonly message: string };
};

/** One file of a directory state to write: its components below the directory, and its bytes. */
export interface StateEntry {
  readonly components: readonly string[];
  readonly content: Buffer;
}

export type WriteAnswer = { readonly status: 'written' } | OpFailure;
export type RemoveAnswer = { readonly status: 'deleted' | 'absent' } | OpFailure;

/** Content as the wire carries it: base64, gzipped when that is smaller; sha256 and size of the bytes. */
export interface EncodedFile {
  readonly content: string;
  readonly encoding?: 'gzip';
  readonly sha256: string;
  readonly size: number;
}

export type ReadState =
  | ({ readonly status: 'read'; readonly kind: 'file' } & EncodedFile)
  | {
      readonly status: 'read';
      readonly kind: 'dir';
      readonly sha256: string;
      readonly size: number;
      readonly entries: ReadEntry[];
    }
  | OpFailure;

export type StatState = ({ readonly status: 'present' } & UnitFacts) | { readonly status: 'absent' } | OpFailure;
export type BusyState =
  | { readonly status: 'present'; readonly kind: 'file' | 'dir'; readonly busy: boolean }
  | { readonly status: 'absent' }
  | OpFailure;

/** Seams for tests only (main.ts never sets them), to reach the moments between the steps of a write. */
export interface StoreHooks {
  /** A writeDir staged its state; its last check before the commit comes next. */
  readonly staged?: () => Promise<void>;
  /** A writeDir committed its state (`new.<name>`); the check after the commit comes next. */
  readonly committed?: () => Promise<void>;
  /** Instead of the fsync of a directory a write renamed something in (a test makes it fail). */
  readonly syncDir?: (dir: DirHandle) => Promise<void>;
}

/** The events the store logs (warn lines): the agent's closed set includes them. */
export const STORE_EVENTS = [
  'quarantined',
  'fsync_failed',
  'unit_unlisted',
  'listing_truncated',
  'recovery_failed',
] as const;
export type StoreEvent = (typeof STORE_EVENTS)[number];

/** What startup recovery did: interrupted replaces finished or rolled back, leftovers removed or quarantined. */
export interface RecoveryReport {
  /** a committed new state renamed into place */
  readonly completed: number;
  /** an old state put back (its replace had not committed, or the target was busy) */
  readonly restored: number;
  /** temp files and trees removed (staging, old states already replaced, deletes cut off) */
  readonly removed: number;
  /** trees kept under a quarantine name: undecidable (a state was made at the name meanwhile) or busy */
  readonly quarantined: number;
}

/** A time on a clock of its own (the app's, which admitted the command): tests run agents on made-up clocks. */
export interface Deadline {
  readonly at: number;
  readonly now: () => number;
}

/**
 * How a changing op (write, writeDir, remove) fits in the command it belongs to (routes/files.ts). Without it an op
 * may change the disk at once and is durable when it resolves, as a caller outside a command expects.
 */
export interface OpTiming {
  /**
   * Settles once the command's replay-journal record is durable. The op does what changes nothing first (walks,
   * the temp file or staged tree of a write, checks) and waits for it just before its last look and first change. A
   * rejection stops the op before any change: it throws a CommandNotRecorded after removing what it staged.
   */
  readonly gate?: Promise<void>;
  /**
   * The command's deadline: its expiresAt plus the agent's clock skew, past which no agent may apply it (the
   * controller's guards count on it), on the clock that admitted the command (`now`). An op that reaches its gate,
   * or the rename that puts its change in place, from then on stops there, changing nothing, and answers `expired`.
   */
  readonly deadline?: Deadline;
  /**
   * When set, the op resolves with its answer as soon as that is decided (its rename made), and hands this the
   * promise of its last fsyncs: the answer's journal line is then synced alongside them. The unit stays locked until
   * they are done, so the next op on it still sees a durable disk.
   */
  readonly onDurable?: (durable: Promise<void>) => void;
}

export interface FileStore {
  write(
    type: FileType,
    components: readonly string[],
    content: Buffer,
    expect?: Expectation,
    timing?: OpTiming,
  ): Promise<WriteAnswer>;
  /** Replaces the directory at `components` with exactly `entries`, atomically. */
  writeDir(
    type: FileType,
    components: readonly string[],
    entries: readonly StateEntry[],
    expect?: Expectation,
    timing?: OpTiming,
  ): Promise<WriteAnswer>;
  remove(type: FileType, components: readonly string[], expect?: Expectation, timing?: OpTiming): Promise<RemoveAnswer>;
  /**
   * `maxContentChars`: the base64 the answer still has room for; a read that would carry more stops as soon as it
   * knows and answers io_error (EFBIG), instead of encoding everything first.
   */
  read(type: FileType, components: readonly string[], maxContentChars?: number): Promise<ReadState>;
  stat(type: FileType, components: readonly string[]): Promise<StatState>;
  /** Whether a lock is held on the state or below it; no file is read. */
  busy(type: FileType, components: readonly string[]): Promise<BusyState>;
  /**
   * One unit per file or directory directly below that root; never follows links; skips temp names. A unit that
   * can't be described (past the walk limits, an I/O error) is left out and logged (`unit_unlisted`). `budget` bounds
   * what the listing reads (a fresh one when left out; one listing of several roots shares one): past it the listing
   * stops, and sets `budget.truncated`.
   */
  list(type: FileType, budget?: ListBudget): Promise<ListEntry[]>;
  /**
   * At startup, before serving: finishes or rolls back interrupted replaces, removes every other temp entry, and
   * quarantines what it can't decide about or finds busy. A unit it can't recover is logged and skipped.
   */
  recover(): Promise<RecoveryReport>;
}

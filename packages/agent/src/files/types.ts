// The public shapes of the agent's file store.
import type { FileType, ListEntry, OpErrorCode } from '@hostfiles/shared';

/** Absolute, normalized, existing directories; trusted configuration. */
export interface FileRoots {
  readonly TpmState: string;
  readonly NvRam: string;
}

/** Owner given to written files and created directories, when set (swtpm runs as `tss` or `swtpm`). */
export interface FileOwner {
  readonly uid?: number;
  readonly gid?: number;
}

export type OpFailure = {
  readonly status: 'failed';
  readonly error: { readonly code: OpErrorCode; readonly message: string };
};

export interface FileStore {
  write(type: FileType, components: readonly string[], content: Buffer): Promise<{ status: 'written' } | OpFailure>;
  remove(type: FileType, components: readonly string[]): Promise<{ status: 'deleted' | 'absent' } | OpFailure>;
  read(type: FileType, components: readonly string[]): Promise<{ status: 'read'; content: Buffer } | OpFailure>;
  /** Every regular file under that root; never follows links; skips temp files. */
  list(type: FileType): Promise<ListEntry[]>;
  /** At startup: deletes leftover temp files of interrupted writes under both roots; returns how many. */
  removeTempFiles(): Promise<number>;
}

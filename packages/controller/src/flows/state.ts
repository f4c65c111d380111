// A VM's state as the controller carries it: a file, or a directory of files, each stored as it travels (gzip when
// that is smaller), so a 64 MiB NVRAM store is held, stored and sent as a few KiB and inflated only to be checked.
import {
  encodeContent,
  verifyContent,
  stateDigest,
  type ApplyOp,
  type Expectation,
  type FileType,
  type ReadResult,
  type StateKind,
} from '@hostfiles/shared';
import type { BackupEntry } from '../store/index.js';

/** The most bytes one state may hold once decoded (two 64 MiB AAVMF stores fit). */
export const MAX_STATE_BYTES = 256 * 1024 * 1024;

export interface State {
  readonly kind: StateKind;
  /** a file's sha256, or a directory's state digest */
  readonly sha256: string;
  /** the decoded bytes: a file's size, or the sum of a directory's files */
  readonly size: number;
  /** a file state has one entry, at path '' */
  readonly entries: readonly BackupEntry[];
}

function entryOf(path: string, bytes: Uint8Array): BackupEntry {
  const encoded = encodeContent(bytes);
  return {
    path,
    content: Buffer.from(encoded.content, 'base64'),
    encoding: encoded.encoding ?? 'identity',
    sha256: encoded.sha256,
    size: encoded.size,
  };
}

/** A file's bytes as a state. */
export function fileState(bytes: Uint8Array): State {
  const entry = entryOf('', bytes);
  return { kind: 'file', sha256: entry.sha256, size: entry.size, entries: [entry] };
}

/** A directory's files (paths relative to it) as a state. */
export function dirState(files: readonly { readonly path: string; readonly content: Uint8Array }[]): State {
  const entries = files.map((file) => entryOf(file.path, file.content));
  return {
    kind: 'dir',
    sha256: stateDigest(entries),
    size: entries.reduce((n, e) => n + e.size, 0),
    entries: [...entries].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path))),
  };
}

const wire = (entry: BackupEntry) => ({
  content: entry.content.toString('base64'),
  ...(entry.encoding === 'gzip' ? { encoding: 'gzip' as const } : {}),
  sha256: entry.sha256,
  size: entry.size,
});

/** The op that puts `state` at `path`: a write for a file, a writeDir for a directory. */
export function placeOp(type: FileType, path: string, state: State, expect?: Expectation): ApplyOp {
  const condition = expect === undefined ? {} : { expect };
  if (state.kind === 'dir') {
    return {
      op: 'writeDir',
      type,
      path,
      entries: state.entries.map((e) => ({ path: e.path, ...wire(e) })),
      ...condition,
    };
  }
  const [entry] = state.entries;
  if (entry === undefined || state.entries.length !== 1) throw new RangeError('a file state has exactly one entry');
  return { op: 'write', type, path, ...wire(entry), ...condition };
}

/**
 * The state a read answered, checked: every entry inflates (as a stream, bounded) to its size and sha256, and the
 * whole to the digest the agent sent; nothing is held decoded. Entries are kept as they came. A string says what is
 * wrong.
 */
export async function stateFromRead(result: Extract<ReadResult, { status: 'read' }>): Promise<State | string> {
  const raw =
    result.kind === 'file'
      ? [{ path: '', content: result.content, encoding: result.encoding, sha256: result.sha256, size: result.size }]
      : result.entries;
  const entries: BackupEntry[] = raw.map((entry) => ({
    path: entry.path,
    content: Buffer.from(entry.content, 'base64'),
    encoding: entry.encoding ?? 'identity',
    sha256: entry.sha256,
    size: entry.size,
  }));
  const state: State = {
    kind: result.kind,
    sha256: result.sha256,
    size: entries.reduce((n, e) => n + e.size, 0),
    entries,
  };
  if (state.size !== result.size) return 'the size does not match';
  return (await checkState(state)) ?? state;
}

/** Checks entries against their digests and sizes (as a stream, bounded), and the state's digest; a string says what is wrong. */
export async function checkState(state: State): Promise<string | null> {
  let budget = MAX_STATE_BYTES;
  for (const entry of state.entries) {
    const encoding = entry.encoding === 'gzip' ? 'gzip' : undefined;
    const checked = await verifyContent(entry.content, encoding, entry.sha256, entry.size, budget);
    if (!checked.ok) return `${entry.path || 'the file'}: ${checked.error.replace('_', ' ')}`;
    budget -= entry.size;
  }
  const digest = state.kind === 'file' ? state.entries[0]?.sha256 : stateDigest(state.entries);
  if (state.kind === 'file' && state.entries.length !== 1) return 'a file state has exactly one entry';
  return digest === state.sha256 ? null : 'the files do not match the state digest';
}

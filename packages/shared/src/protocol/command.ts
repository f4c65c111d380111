// Building commands the way the controller sends them (also used by the tests and the benchmark).
import { createHash, randomUUID } from 'node:crypto';
import type { Command, CommandKind, DeleteOp, Expectation, FileType, WriteDirOp, WriteOp } from './schemas.js';
import { encodeContent } from './state.js';

export const DEFAULT_COMMAND_LIFETIME_MS = 60_000;

export interface CommandTiming {
  readonly now: number;
  readonly lifetimeMs?: number;
  readonly requestId?: string;
}

/** What a caller gives for a command of kind K: all but the header that buildCommand fills in. */
export type CommandBody<K extends CommandKind> = Omit<
  Extract<Command, { kind: K }>,
  'kind' | 'hostUuid' | 'requestId' | 'issuedAt' | 'expiresAt'
>;

export function buildCommand<K extends CommandKind>(
  kind: K,
  hostUuid: string,
  body: CommandBody<K>,
  timing: CommandTiming,
): Extract<Command, { kind: K }> {
  return {
    kind,
    hostUuid,
    requestId: timing.requestId ?? randomUUID(),
    issuedAt: timing.now,
    expiresAt: timing.now + (timing.lifetimeMs ?? DEFAULT_COMMAND_LIFETIME_MS),
    ...body,
  } as Extract<Command, { kind: K }>;
}

export interface WriteOptions {
  /** gzip the content when that makes it smaller (the controller always does; tests choose) */
  readonly compress?: boolean;
  readonly expect?: Expectation;
}

export function writeOp(type: FileType, path: string, content: Uint8Array, options: WriteOptions = {}): WriteOp {
  const sha256 = createHash('sha256').update(content).digest('hex');
  const encoded = options.compress === true ? encodeContent(content, sha256) : undefined;
  return {
    op: 'write',
    type,
    path,
    content: encoded?.content ?? Buffer.from(content.buffer, content.byteOffset, content.byteLength).toString('base64'),
    ...(encoded?.encoding === undefined ? {} : { encoding: encoded.encoding, size: encoded.size }),
    sha256,
    ...(options.expect === undefined ? {} : { expect: options.expect }),
  };
}

/** A directory state: every entry's path relative to `path`; content gzipped when that makes it smaller. */
export function writeDirOp(
  type: FileType,
  path: string,
  entries: readonly { readonly path: string; readonly content: Uint8Array }[],
  options: Omit<WriteOptions, 'compress'> = {},
): WriteDirOp {
  return {
    op: 'writeDir',
    type,
    path,
    entries: entries.map((entry) => {
      const { content, encoding, sha256, size } = encodeContent(entry.content);
      return { path: entry.path, content, ...(encoding === undefined ? {} : { encoding, size }), sha256 };
    }),
    ...(options.expect === undefined ? {} : { expect: options.expect }),
  };
}

export const deleteOp = (type: FileType, path: string, expect?: Expectation): DeleteOp => ({
  op: 'delete',
  type,
  path,
  ...(expect === undefined ? {} : { expect }),
});

// Building commands the way the controller sends them (also used by the tests and the benchmark).
import { createHash, randomUUID } from 'node:crypto';
import type { Command, CommandKind, DeleteOp, FileType, WriteOp } from './schemas.js';

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

export function writeOp(type: FileType, path: string, content: Uint8Array): WriteOp {
  return {
    op: 'write',
    type,
    path,
    content: Buffer.from(content.buffer, content.byteOffset, content.byteLength).toString('base64'),
    sha256: createHash('sha256').update(content).digest('hex'),
  };
}

export const deleteOp = (type: FileType, path: string): DeleteOp => ({ op: 'delete', type, path });

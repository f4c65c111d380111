// What a sample sends: the same ops, signed, to the agent (envelopes) and to the baseline (a plain body and a header).
import { join } from 'node:path';
import {
  buildCommand,
  COMMAND_CONTEXT,
  deleteOp,
  signedBytes,
  signEnvelope,
  writeOp,
  type ApplyOp,
  type SigningKey,
} from '@hostfiles/shared';
import { sign } from 'node:crypto';
import type { Identities, Transport } from './transport.js';

export type OpKind = 'write' | 'delete';

/** The size of one TPM state file (a tpm2-00.permall is 7–20 KiB). */
export const CONTENT = Buffer.alloc(10 * 1024, 0x5a);
const CONTENT_BASE64 = CONTENT.toString('base64');

export interface BaselineConfig {
  /** Where its ops may go, as an agent's roots: each op's path is below one of them. */
  readonly roots: readonly string[];
  /** base64 of the controller's 32-byte Ed25519 public key, as in the agent's trustedKeys */
  readonly publicKey: string;
  readonly transport: Transport;
  /** for a TLS transport: the keys of both sides */
  readonly identities: Identities;
}

/** The baseline's request header: base64 of the Ed25519 signature over COMMAND_CONTEXT and the body bytes. */
export const SIGNATURE_HEADER = 'x-signature';

export interface PlainOp {
  readonly op: OpKind;
  readonly path: string;
  /** base64, for a write */
  readonly content?: string;
}

export interface BenchRequest {
  readonly body: Buffer;
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * `requests` batches of `batch` paths below `root`, each op on a unit of its own (so both sides run a batch 8 at a
 * time): `<root>/<tag>-<request>-<op>/tpm2-00.permall`, a TPM state's directory and its main file.
 */
export function batchesOf(root: string, tag: string, requests: number, batch: number): string[][] {
  return Array.from({ length: requests }, (_, r) =>
    Array.from({ length: batch }, (_, i) => join(root, `${tag}-${r}-${i}`, 'tpm2-00.permall')),
  );
}

/** One signed files.apply envelope per batch, as the controller sends it. */
export function agentRequests(op: OpKind, batches: string[][], key: SigningKey, hostUuid: string): BenchRequest[] {
  const now = Date.now();
  return batches.map((paths) => {
    const ops: ApplyOp[] = paths.map((path) =>
      op === 'write' ? writeOp('TpmState', path, CONTENT) : deleteOp('TpmState', path),
    );
    const command = buildCommand('files.apply', hostUuid, { ops }, { now, lifetimeMs: 300_000 });
    return { body: Buffer.from(JSON.stringify(signEnvelope(COMMAND_CONTEXT, command, key))), headers: {} };
  });
}

/** One plain body per batch, its signature in a header: the same bytes of content, no envelope. */
export function baselineRequests(op: OpKind, batches: string[][], key: SigningKey): BenchRequest[] {
  return batches.map((paths) => {
    const ops: PlainOp[] = paths.map((path) => (op === 'write' ? { op, path, content: CONTENT_BASE64 } : { op, path }));
    const body = Buffer.from(JSON.stringify({ ops }));
    const signature = sign(null, signedBytes(COMMAND_CONTEXT, body), key.privateKey).toString('base64');
    return { body, headers: { [SIGNATURE_HEADER]: signature } };
  });
}

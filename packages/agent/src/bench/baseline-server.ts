// The benchmark's baseline: a bare server doing the agent's durable file work as fast as it can, and no more.
//
// Same as the agent: the same transport (transport.ts); an Ed25519 verification of every body (see main.ts for why);
// the ops of a batch run 8 at a time when no two share a unit (the first component below the root), else in order;
// and per op the same fsyncs:
// - write: parents made when missing; a temp file beside the target (exclusive), written, fsynced, renamed over it;
//   then the target's directory and every directory that gained a subdirectory fsynced, in parallel (2 fsyncs into
//   an existing directory, 3 when the state's directory is new);
// - delete: the target moved aside to a temp name, unlinked, its empty parents removed up to the root, then the
//   deepest directory still standing fsynced (1 fsync).
// Left out, as the agent's own overhead: the envelope, strict JSON and schema checks, the replay journal, confinement
// and the symlink-safe walk, content digests, busy checks, ownership, per-op logs and the signed answer.
import { verify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join, relative } from 'node:path';
import { COMMAND_CONTEXT, mapLimit, signedBytes, trustedKeyFromBase64 } from '@hostfiles/shared';
import { remove, write } from './baseline-ops.js';
import { listenAndReport, transportKit } from './transport.js';
import { SIGNATURE_HEADER, type BaselineConfig, type PlainOp } from './workload.js';

/** As the agent: how many ops of one batch run at once when their units are distinct. */
const PARALLEL_OPS = 8;

/** The root `path` is below; a path below none is refused, as the agent refuses it. */
function rootOf(roots: readonly string[], path: string): string {
  const root = roots.find((r) => path.startsWith(`${r}/`));
  if (root === undefined) throw new Error(`${path} is below no root`);
  return root;
}

/** A root and the first component below it: what the agent serializes ops on. */
function unitOf(roots: readonly string[], path: string): string {
  const root = rootOf(roots, path);
  return join(root, relative(root, path).split('/')[0] ?? '');
}

/** As the agent's `independent`: no two ops on one unit. */
function independent(roots: readonly string[], ops: readonly PlainOp[]): boolean {
  return new Set(ops.map((op) => unitOf(roots, op.path))).size === ops.length;
}

async function apply(roots: readonly string[], ops: readonly PlainOp[]): Promise<string[]> {
  const limit = independent(roots, ops) ? PARALLEL_OPS : 1;
  return mapLimit(ops, limit, (op) => {
    const root = rootOf(roots, op.path);
    return op.op === 'write' ? write(root, op.path, Buffer.from(op.content ?? '', 'base64')) : remove(root, op.path);
  });
}

function handler(config: BaselineConfig, key: KeyObject) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const signature = Buffer.from(String(req.headers[SIGNATURE_HEADER] ?? ''), 'base64');
      if (!verify(null, signedBytes(COMMAND_CONTEXT, body), key, signature)) {
        res.writeHead(401).end('bad signature');
        return;
      }
      const { ops } = JSON.parse(body.toString('utf8')) as { ops: PlainOp[] };
      apply(config.roots, ops).then(
        (results) => {
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ results }));
        },
        (error: unknown) => {
          res.writeHead(500).end(String(error));
        },
      );
    });
  };
}

function main(configPath: string): void {
  const config = JSON.parse(readFileSync(configPath, 'utf8')) as BaselineConfig;
  const key = trustedKeyFromBase64(config.publicKey).key;
  listenAndReport(transportKit(config.transport).createServer(handler(config, key), config.identities));
}

main(process.argv[2] ?? '');

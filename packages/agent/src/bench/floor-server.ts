// The benchmark's floor (BENCH_AGENT=floor runs it in the agent's place): the least a server must do, beyond the
// baseline's file work, to give what the agent's protocol promises for files.apply, written as plainly and cheaply
// as this project can write it. Not an agent: it refuses by throwing, checks only what the benchmark sends, and
// keeps its replay memory in a Map it never trims. What it measures is whether any Node server keeping these
// promises can come within the target of the baseline on the same machine, whatever the agent's own code costs.
//
// Beyond the baseline, per request:
// - the envelope (JSON.parse, no strict scan) and the payload's Ed25519 verification, as the baseline verifies;
// - the command: JSON.parse, no schema; its host, its times, its ops' kinds and paths below the root;
// - replay protection: the requestId remembered with the signature (deterministic and unique per payload in
//   Ed25519, so no SHA-256 is needed), its record durable (a group-committed O_DSYNC append, as the agent's journal)
//   before the first change, and the answer's line durable before the answer is sent;
// - busy checks: /proc/locks read at once and the unit's inodes compared with it, before a
//   write's rename, and before and after a delete's move aside (walked again only when the locks changed);
// - the answer: results serialized and signed (Ed25519), in an envelope;
// - one log line per request.
import { sign, verify, type KeyObject } from 'node:crypto';
import { constants, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, join, relative } from 'node:path';
import { ANSWER_CONTEXT, COMMAND_CONTEXT, mapLimit, signingKeyFromPem, trustedKeyFromBase64 } from '@hostfiles/shared';
import { errnoOf } from '../files/fd-path.js';
import { parseProcLocks, procLocksText, sameLocks } from '../files/locks.js';
import { createGroupCommit } from '../journal/group-commit.js';
import { fsyncDir, makeParents, pruneEmptyDirs, tempIn, writeSynced } from './baseline-ops.js';
import { listenAndReport, transportKit } from './transport.js';
import type { BaselineConfig } from './workload.js';

export interface FloorConfig extends BaselineConfig {
  readonly hostUuid: string;
  /** where its replay journal goes */
  readonly stateDir: string;
}

/** An op as sent: its kind is checked, not trusted. */
interface Op {
  readonly op: string;
  readonly path: string;
  readonly content?: string;
}

const PARALLEL_OPS = 8;
const COMMAND_PREFIX = Buffer.from(COMMAND_CONTEXT);
const ANSWER_PREFIX = Buffer.from(ANSWER_CONTEXT);

/**
 * The inodes of `path` and everything below it (lstat, not following links); none when it is not there. Read at once
 * (on the event loop), which costs a few microseconds a call where a trip through the thread pool costs tens.
 */
function inodesOf(path: string): bigint[] {
  let stats;
  try {
    stats = lstatSync(path, { bigint: true });
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return [];
    throw error;
  }
  if (!stats.isDirectory()) return [stats.ino];
  return [stats.ino, ...readdirSync(path).flatMap((name) => inodesOf(join(path, name)))];
}

/**
 * /proc/locks, read at once (locks.ts's own reader: one kept fd, a text over one read(2) read until two reads agree).
 * The agent's read (readProcLocks) waits for the end of the turn to serve every check of it with one read, and goes
 * through the thread pool when the last read is over 5 ms old; this one never waits. Its fd is opened by a first read
 * in the pool, at start (main).
 */
const locksText = procLocksText();
let lastLocks = { text: '', locks: new Set<string>() as ReadonlySet<string> };

/** The inodes holding locks now, parsed only when the text changed. */
function lockedInodes(): ReadonlySet<string> {
  const text = locksText.now();
  if (text === undefined) throw new Error('/proc/locks is not open yet');
  if (text !== lastLocks.text) lastLocks = { text, locks: parseProcLocks(text) };
  return lastLocks.locks;
}

/** A unit's busy check: its inodes (walked again only when the locks changed since `before`) against the locks. */
interface Looked {
  readonly busy: boolean;
  readonly locks: ReadonlySet<string>;
  readonly inodes: readonly bigint[];
}

function busy(unit: string, before?: Looked): Looked {
  const locks = lockedInodes();
  const inodes = before !== undefined && sameLocks(locks, before.locks) ? before.inodes : inodesOf(unit);
  return { busy: inodes.some((inode) => locks.has(inode.toString())), locks, inodes };
}

/** An op's status, and its last fsyncs: the answer waits for them alongside its own journal line, as the agent's. */
interface Done {
  readonly status: string;
  readonly synced: Promise<unknown>;
}

const NOTHING = Promise.resolve();

async function write(root: string, path: string, content: Buffer, recorded: Promise<void>): Promise<Done> {
  const unit = join(root, relative(root, path).split('/')[0] ?? '');
  const dir = dirname(path);
  const grown = await makeParents(root, dir);
  const temp = tempIn(dir);
  await writeSynced(temp, content);
  // As the agent: the parents made and the temp file written while the record is made durable (its directories would
  // go again if it were not), nothing renamed into place before it is.
  await recorded;
  if (busy(unit).busy) {
    await unlink(temp);
    return { status: 'busy', synced: NOTHING };
  }
  await rename(temp, path);
  return { status: 'written', synced: Promise.all([dir, ...grown].map(fsyncDir)) };
}

async function remove(root: string, path: string, recorded: Promise<void>): Promise<Done> {
  const unit = join(root, relative(root, path).split('/')[0] ?? '');
  const dir = dirname(path);
  const first = busy(unit);
  if (first.busy) return { status: 'busy', synced: NOTHING };
  await recorded;
  const aside = tempIn(dir);
  try {
    await rename(path, aside);
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return { status: 'absent', synced: NOTHING };
    throw error;
  }
  // The same inodes, the target's now under its temporary name: walked again only if a lock came or went since.
  if (busy(unit, first).busy) {
    await rename(aside, path);
    return { status: 'busy', synced: NOTHING };
  }
  await unlink(aside);
  return { status: 'deleted', synced: fsyncDir(await pruneEmptyDirs(root, dir)) };
}

async function main(configPath: string): Promise<void> {
  const config = JSON.parse(readFileSync(configPath, 'utf8')) as FloorConfig;
  const trusted = trustedKeyFromBase64(config.publicKey);
  const keys = new Map<string, KeyObject>([[trusted.keyId, trusted.key]]);
  const signer = signingKeyFromPem(config.identities.serverKeyPem);
  const root = config.roots[0] ?? '';
  await locksText.inPool();
  const journalFile: FileHandle = await open(
    join(config.stateDir, 'replay.jsonl'),
    constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_DSYNC,
    0o600,
  );
  const journal = createGroupCommit({
    write: (text) => journalFile.appendFile(text),
    sync: () => Promise.resolve(),
    afterSync: () => Promise.resolve(),
  });
  const seen = new Map<string, string>();

  const run = async (body: Buffer): Promise<string> => {
    const envelope = JSON.parse(body.toString('latin1')) as { keyId: string; payload: string; signature: string };
    const key = keys.get(envelope.keyId);
    if (key === undefined) throw new Error('unknown key');
    const signed = Buffer.allocUnsafe(COMMAND_PREFIX.length + Buffer.byteLength(envelope.payload, 'base64'));
    COMMAND_PREFIX.copy(signed);
    const end = COMMAND_PREFIX.length + signed.write(envelope.payload, COMMAND_PREFIX.length, 'base64');
    if (!verify(null, signed.subarray(0, end), key, Buffer.from(envelope.signature, 'base64'))) {
      throw new Error('bad signature');
    }
    const command = JSON.parse(signed.toString('utf8', COMMAND_PREFIX.length, end)) as {
      kind: string;
      requestId: string;
      hostUuid: string;
      issuedAt: number;
      expiresAt: number;
      ops: Op[];
    };
    const now = Date.now();
    if (command.kind !== 'files.apply' || command.hostUuid !== config.hostUuid) throw new Error('wrong command');
    if (command.issuedAt > now + 60_000 || command.expiresAt <= now - 60_000) throw new Error('out of its time');
    if (seen.has(command.requestId)) throw new Error('replayed');
    const ops = command.ops;
    for (const op of ops) {
      if ((op.op !== 'write' && op.op !== 'delete') || !op.path.startsWith(`${root}/`) || op.path.includes('/.')) {
        throw new Error('bad op');
      }
    }
    seen.set(command.requestId, envelope.signature);
    const recorded = journal.append(
      JSON.stringify({ r: command.requestId, h: envelope.signature, f: command.expiresAt + 60_000 }),
    );
    const units = new Set(ops.map((op) => relative(root, op.path).split('/')[0]));
    const synced: Promise<unknown>[] = [];
    let taken = 0;
    const results = await mapLimit(ops, units.size === ops.length ? PARALLEL_OPS : 1, async (op) => {
      taken += 1;
      const done =
        op.op === 'write'
          ? await write(root, op.path, Buffer.from(op.content ?? '', 'base64'), recorded)
          : await remove(root, op.path, recorded);
      synced.push(done.synced);
      // As the agent: a worker takes the next op once this one's fsyncs are done; the last ones run on past here.
      if (taken < ops.length) await done.synced;
      return { op: op.op, type: 'TpmState', path: op.path, status: done.status };
    });
    const payload = Buffer.from(
      JSON.stringify({ requestId: command.requestId, hostUuid: config.hostUuid, kind: 'files.apply', results }),
    );
    const answer = JSON.stringify({
      keyId: signer.keyId,
      payload: payload.toString('base64'),
      signature: sign(null, Buffer.concat([ANSWER_PREFIX, payload]), signer.privateKey).toString('base64'),
    });
    await Promise.all([journal.append(JSON.stringify({ r: command.requestId, a: answer })), ...synced]);
    process.stdout.write(
      `${JSON.stringify({ time: new Date(now).toISOString(), event: 'request', requestId: command.requestId, ms: Date.now() - now })}\n`,
    );
    return answer;
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      run(Buffer.concat(chunks)).then(
        (answer) => res.writeHead(200, { 'content-type': 'application/json' }).end(answer),
        (error: unknown) => res.writeHead(400).end(String(error)),
      );
    });
  };
  listenAndReport(transportKit(config.transport).createServer(handler, config.identities), () => {
    void journalFile.close();
  });
}

void main(process.argv[2] ?? '');

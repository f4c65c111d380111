// The checks every signed endpoint makes, in DESIGN.md's order; the first failure answers and nothing is applied.
import { createHash, type KeyObject } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from 'hono';
import {
  ANSWER_CONTEXT,
  COMMAND_CONTEXT,
  MAX_CLOCK_SKEW_MS,
  MAX_COMMAND_LIFETIME_MS,
  parseCommand,
  parseEnvelope,
  signEnvelope,
  withVerifiedPayload,
  type Answer,
  type Command,
  type CommandKind,
  type ProtocolError,
  type Result,
  type Scratch,
} from '@hostfiles/shared';
import type { AppDeps } from '../deps.js';
import { AgentError, isAgentError } from '../errors.js';
import { NO_METRICS, type RequestOutcome } from '../metrics/agent-metrics.js';
import { readCappedBody } from './body.js';

/** A command that passed check 9, ready to run. */
export interface Prepared {
  /**
   * Runs the command. `recorded` settles once its journal record is durable: an op that changes files waits for it
   * just before its first change (OpTiming.gate). `durable` takes what must also be done before the answer is sent:
   * the last fsyncs of ops that answered before them (OpTiming.onDurable). A read uses neither.
   */
  readonly execute: (recorded: Promise<void>, durable: (done: Promise<void>) => void) => Promise<Answer>;
  /** Whether the answer may be kept in the replay journal (never for answers carrying file contents). */
  readonly storeAnswer: boolean;
}

export type Prepare<K extends CommandKind> = (
  command: Extract<Command, { kind: K }>,
) => Result<Prepared, ProtocolError>;

/**
 * `trusted`: the command is signed, for this host, in its time and not other bytes under a requestId seen before, so
 * what follows is a trusted controller's doing. A signature alone is not enough: any envelope the controller ever
 * signed (for another host, long expired) verifies, and anyone who saw one can send it again and again.
 */
export type Bindings = {
  Bindings: { incoming?: IncomingMessage; outgoing?: ServerResponse };
  Variables: { trusted: boolean };
};

/** What every signed endpoint runs: `handle(c, kind, prepare)`. */
export type SignedHandler = <K extends CommandKind>(
  c: Context<Bindings>,
  kind: K,
  prepare: Prepare<K>,
) => Promise<Response>;

/** `wasRefused`: whether a stranger's connection was refused once already (app.ts): it is closing. */
export function createSignedHandler(
  deps: AppDeps,
  wasRefused: (socket: object) => boolean = () => false,
): SignedHandler {
  // One buffer for decoding payloads to verify them, used again by every request (verification is synchronous):
  // a flood of envelopes that do not verify leaves no garbage behind.
  let scratch = Buffer.alloc(0);
  const take: Scratch = (bytes) => {
    if (scratch.length < bytes) scratch = Buffer.allocUnsafe(bytes);
    return scratch.subarray(0, bytes);
  };
  const metrics = deps.metrics ?? NO_METRICS;
  return async (c, kind, prepare) => {
    // A monotonic clock, not deps.now: a duration must not jump with the wall clock.
    const started = performance.now();
    let outcome: RequestOutcome = 'ok';
    // app.request() in-process passes no env at all; under @hono/node-server it holds the IncomingMessage.
    const env = c.env as Bindings['Bindings'] | undefined;
    // The body's bytes count against the agent's budget until the request is done with them, whatever its outcome.
    const claim = deps.bodyBudget.open();
    try {
      refusePipelinedStranger(deps, env, wasRefused);
      const body = await readCappedBody(env?.incoming, c.req.raw, deps.maxBodyBytes, claim); // 1
      return await checkAndRun(c, kind, { ...deps, scratch: take }, prepare, body);
    } catch (error) {
      outcome = isAgentError(error) ? 'refused' : 'error';
      throw error;
    } finally {
      claim.release();
      metrics.request(kind, outcome, (performance.now() - started) / 1000);
    }
  };
}

/**
 * A request on a connection not proven a controller's that was sent behind another is refused unread and unverified
 * when that one is still unanswered (its response queued: `outgoing.socket` null), or was refused (the connection
 * is closing). Node hands a connection's requests to the agent as it parses them, answered or not: `Connection:
 * close` on a stranger's first refusal would only drop the answers of what it pipelined behind, not their signature
 * checks, and one connection could make the agent verify some 290 envelopes a read. A controller never pipelines.
 * In-process (no socket) there is nothing to tell.
 */
function refusePipelinedStranger(
  deps: AppDeps,
  env: Bindings['Bindings'] | undefined,
  wasRefused: (socket: object) => boolean,
): void {
  const socket = env?.incoming?.socket;
  if (env?.outgoing === undefined || socket === undefined) return;
  if (env.outgoing.socket !== null && !wasRefused(socket)) return;
  if (deps.connectionTrusted?.(socket) === true) return;
  throw new AgentError(
    'bad_request',
    "a request pipelined behind another on a connection not proven a controller's: send one at a time",
  );
}

async function checkAndRun<K extends CommandKind>(
  c: Context<Bindings>,
  kind: K,
  deps: AppDeps & { readonly scratch: Scratch },
  prepare: Prepare<K>,
  body: Buffer,
): Promise<Response> {
  // latin1, not utf8: a plain copy (no decoding), and an envelope is ASCII throughout, so the verdict is the same
  // (scan-envelope.test.ts checks it on bodies that are not ASCII).
  const envelope = unwrap(parseEnvelope(body.toString('latin1'))); // 2
  const trusted = (id: string): KeyObject | undefined => deps.trustedKeys.get(id)?.key;
  // The payload's bytes are parsed and hashed where they were decoded, in the scratch buffer, before anything else runs.
  const { parsed, hash } = unwrap(
    withVerifiedPayload(envelope, COMMAND_CONTEXT, trusted, deps.scratch, (payload) => ({
      parsed: parseCommand(payload, kind),
      hash: createHash('sha256').update(payload).digest('hex'),
    })),
  ); // 3, 4
  const command = unwrap(parsed); // 5
  if (command.hostUuid !== deps.hostUuid) {
    throw new AgentError('wrong_host', `the command is for host ${command.hostUuid}, this is ${deps.hostUuid}`); // 6
  }
  // The parser's strings are slices of the payload's text, and the journal keeps requestIds for minutes: a slice
  // would keep the whole command (file contents included) alive with it. A copy of its 36 ASCII characters does not.
  const requestId = Buffer.from(command.requestId, 'latin1').toString('latin1');
  const lookup = deps.journal.check(requestId, hash);
  const late = timesProblem(command, deps.now(), deps.clockSkewMs);
  // Signed, for this host, in its time, and not other bytes under a requestId seen before: the connection is a
  // controller's (a retry's too: its first attempt's connection may be gone). Not earlier: any envelope signed once
  // (for another host, long expired) verifies, and must earn no place.
  if (late === undefined && lookup.kind !== 'replayed') {
    c.set('trusted', true);
    deps.trustConnection?.((c.env as Bindings['Bindings'] | undefined)?.incoming?.socket);
  }
  // A retry of a command that ran is given its stored answer even past check 7: it applies nothing, and an answer
  // refused as expired would tell the controller that nothing landed when it did.
  const stored = lookup.kind === 'retry' ? await lookup.answer : undefined;
  if (stored !== undefined) {
    deps.logger.info('request', { requestId: command.requestId, kind, retry: true, stored: true });
    return json(c, stored);
  }
  if (late !== undefined) throw new AgentError('expired', late); // 7
  // Check 9 is computed before 8 but answered after it, so a journal record is only made for a command that runs.
  const prepared = prepare(command);
  if (lookup.kind === 'replayed') {
    throw new AgentError('replayed', `requestId ${command.requestId} was seen with other payload bytes`); // 8
  }
  const ready = unwrap(prepared); // 9
  if (lookup.kind === 'retry') {
    deps.logger.info('request', { requestId: command.requestId, kind, retry: true, stored: false });
    // No stored answer. A read or list stores none by design (file contents stay off disk): run it again.
    // An apply without one was cut off (a crash, an error) and its outcome is unknown: running it again could
    // put back a file that a later command replaced, so it is refused; the controller sends a new command.
    if (ready.storeAnswer) {
      throw new AgentError(
        'replayed',
        `request ${command.requestId} was cut off before it was answered: send a new command`,
      );
    }
    const done: Promise<void>[] = [];
    const answer = await ready.execute(Promise.resolve(), (applied) => done.push(applied));
    await Promise.all(done);
    return json(c, answerText(deps, answer));
  }
  const started = deps.now();
  // Remembered past the widest skew a config may set, so a restart with a larger skew can't revive a command.
  // Not awaited before the run: its ops do what changes nothing (walks, checks, a write's temp file) while the
  // record's fdatasync runs, and each waits for it before its first change (DESIGN.md, the replay journal).
  const recorded = deps.journal.record(requestId, hash, command.expiresAt + MAX_CLOCK_SKEW_MS);
  const durables: Promise<void>[] = [];
  const [record, run] = await Promise.allSettled([recorded, ready.execute(recorded, (done) => durables.push(done))]);
  // The last fsyncs of the ops that changed something: no answer, not even an error, goes out before they are done.
  const applied = Promise.all(durables).then(() => undefined);
  // Awaited on the way to an answer only; a failure on the way to an error is one of `durables`, settled below.
  applied.catch(() => undefined);
  if (record.status === 'rejected') {
    // Not durable, so no op changed anything (each waits for it first). The journal has forgotten the request:
    // a retry that was waiting on it is refused as in doubt, a later one runs it anew.
    await Promise.allSettled(durables);
    throw record.reason;
  }
  let text: string | undefined;
  try {
    if (run.status === 'rejected') throw run.reason;
    text = answerText(deps, run.value);
    // The answer's journal line is synced alongside the ops' last fsyncs; both are done before it is sent, and a
    // retry is given it only then too.
    const stored = ready.storeAnswer ? text : undefined;
    await Promise.all([deps.journal.complete(requestId, stored, applied), applied]);
    deps.logger.info('request', { requestId: command.requestId, kind, ms: deps.now() - started });
    return json(c, text);
  } finally {
    if (text === undefined) {
      await Promise.allSettled(durables);
      // Settles waiting retries even when the run failed: an apply's is refused as in doubt, a read's runs again.
      await deps.journal.complete(requestId, undefined);
    }
  }
}

const answerText = (deps: AppDeps, answer: Answer): string =>
  JSON.stringify(signEnvelope(ANSWER_CONTEXT, answer, deps.signer));

/** Check 7: why the command is not in its time, or undefined when it is. */
function timesProblem(command: Command, now: number, skew: number): string | undefined {
  const lifetime = command.expiresAt - command.issuedAt;
  if (command.issuedAt > now + skew) return 'the command was issued in the future';
  if (command.expiresAt <= now - skew) return 'the command has expired';
  if (lifetime <= 0 || lifetime > MAX_COMMAND_LIFETIME_MS) {
    return `a command is valid for 1 to ${MAX_COMMAND_LIFETIME_MS} ms, not ${lifetime}`;
  }
  return undefined;
}

function unwrap<T>(result: Result<T, ProtocolError>): T {
  if (!result.ok) throw new AgentError(result.error.code, result.error.message);
  return result.value;
}

function json(c: Context<Bindings>, text: string): Response {
  return c.body(text, 200, { 'content-type': 'application/json' });
}

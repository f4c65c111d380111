// Reaches agents with ky: POST only, a timeout per attempt, retries that resend the very same signed bytes
// (the agent answers a repeat from its replay journal), answers verified against the host's pinned key.
import ky, { isHTTPError, isTimeoutError } from 'ky';
import {
  ANSWER_CONTEXT,
  ANSWER_WITHIN_HEADER,
  answerByteCap,
  buildCommand,
  COMMAND_CONTEXT,
  ENDPOINTS,
  errorBodySchema,
  infoSchema,
  MAX_ANSWER_WITHIN_MS,
  parseAnswer,
  parseEnvelope,
  readCapped,
  signEnvelope,
  tlsIdentity,
  trustedKeyFromBase64,
  verifyEnvelope,
  type AgentInfo,
  type AnswerFor,
  type CommandBody,
  type CommandKind,
  type FileRef,
  type SigningKey,
} from '@hostfiles/shared';
import type { Agent } from 'undici';
import { AgentCallError, isAgentCallError } from './agent-error.js';
import {
  CONNECTIONS_PER_AGENT,
  createPinnedDispatcher,
  createUnpinnedDispatcher,
  fetchCertificate,
  PIN_MISMATCH,
} from './pinned-tls.js';

/** Where an agent is and how it is trusted on the wire. */
export interface AgentEndpoint {
  readonly url: string;
  /**
   * The agent's pinned certificate (PEM): an https:// URL trusts it alone. Null: plain HTTP (or an https:// URL of a
   * host added before TLS, checked against the system's CAs).
   */
  readonly certificate: string | null;
}

export interface AgentTarget extends AgentEndpoint {
  readonly uuid: string;
  /** the agent's public key, pinned when the host was added */
  readonly publicKey: string;
}

export interface AgentClientOptions {
  readonly key: SigningKey;
  /** per attempt */
  readonly timeoutMs: number;
  /** attempts after the first, for failures that may pass (unreachable, timeout, 5xx) */
  readonly retries: number;
  readonly now: () => number;
  /** waits between attempts; tests pass 0 */
  readonly backoffMs?: number;
  /** how long a signed command stays valid (the protocol's default, 60 s, when absent) */
  readonly commandLifetimeMs?: number;
}

export interface SendOptions {
  /**
   * The bytes the command moves once decoded (a write's files, a read's expected files). Each attempt's timeout grows
   * by the time they take at MIN_BYTES_PER_SECOND: a 64 MiB NVRAM store that travels as a few KiB of gzip still
   * takes the agent seconds to inflate, hash, write and fsync.
   */
  readonly bytes?: number;
  /**
   * The most bytes the answer may hold, for flows that read many hosts at once. Default and ceiling: what an answer of
   * its kind to its command can take (answerByteCap: MAX_ANSWER_BYTES for reads and listings, far less for the rest).
   */
  readonly maxAnswerBytes?: number;
}

export interface AgentClient {
  /** The agent's /v1/info, over its pinned connection. */
  info(endpoint: AgentEndpoint): Promise<AgentInfo>;
  /** The certificate the agent at an https:// URL presents, unverified: what `host add` checks before pinning it. */
  certificate(url: string): Promise<string>;
  send<K extends CommandKind>(
    target: AgentTarget,
    kind: K,
    body: CommandBody<K>,
    options?: SendOptions,
  ): Promise<AnswerFor<K>>;
  /** Closes every connection kept open to agents. */
  close(): Promise<void>;
}

type FetchDispatcher = NonNullable<RequestInit['dispatcher']>;

/** The slowest transfer, write or read an attempt is given time for, beyond its fixed timeout. */
export const MIN_BYTES_PER_SECOND = 4 * 1024 * 1024;

/** One attempt's deadline: the fixed timeout plus the time `bytes` take at MIN_BYTES_PER_SECOND. */
export const attemptTimeoutMs = (timeoutMs: number, bytes: number): number =>
  timeoutMs + Math.ceil((bytes * 1000) / MIN_BYTES_PER_SECOND);

/**
 * The part of an attempt's deadline a listing is given to answer in (ANSWER_WITHIN_HEADER); the rest is for its
 * answer (up to ~3.5 MiB) to be signed, sent and checked, and for the request to reach the agent.
 */
export const LISTING_SHARE = 0.7;

/** The ANSWER_WITHIN_HEADER a listing's attempt carries: its share of the attempt's deadline. */
export const listingWithinMs = (attemptMs: number): number =>
  Math.min(MAX_ANSWER_WITHIN_MS, Math.max(1, Math.floor(attemptMs * LISTING_SHARE)));

export function createAgentClient(options: AgentClientOptions): AgentClient {
  if (options.timeoutMs <= 0) throw new RangeError('timeoutMs must be positive');
  if (!Number.isInteger(options.retries) || options.retries < 0)
    throw new RangeError('retries must be a whole number ≥ 0');
  // No redirects: a 3xx must not carry a signed command (or file contents) to another address.
  // ky's own timeout is off: it ends when the headers arrive, and cannot grow with the size of the work.
  // Answers as they are on the wire (identity): fetch would otherwise ask for and inflate gzip or brotli, and a cap on
  // what is read would be a cap on what the peer's few KiB inflate to (readLimited refuses an encoded answer).
  const http = ky.create({
    retry: 0,
    throwHttpErrors: true,
    timeout: false,
    redirect: 'manual',
    headers: { 'accept-encoding': 'identity' },
  });
  // Covers the whole attempt, reading the answer's body included.
  const deadline = (bytes = 0): AbortSignal => AbortSignal.timeout(attemptTimeoutMs(options.timeoutMs, bytes));
  // A listing is told how long it has: one of a root its QEMU user filled with big files answers in time, truncated,
  // where it would hash past every attempt's deadline. Outside the signature, so the same bytes are sent again.
  const headersFor = (kind: CommandKind, bytes: number): Record<string, string> => ({
    'content-type': 'application/json',
    ...(kind === 'files.list'
      ? { [ANSWER_WITHIN_HEADER]: String(listingWithinMs(attemptTimeoutMs(options.timeoutMs, bytes))) }
      : {}),
  });
  const identity = tlsIdentity(options.key);
  // One per endpoint, kept for its connections (at most CONNECTIONS_PER_AGENT); ky hands `dispatcher` on to fetch.
  // Its commands take turns, as many at once as it has connections: a command's attempt begins (and its deadline
  // with it) when it has one, not while it waits behind others for a connection in undici's queue.
  const endpoints = new Map<string, { readonly dispatcher: Agent; readonly turns: Turns }>();
  const reach = (endpoint: AgentEndpoint): { readonly dispatcher: Agent; readonly turns: Turns } => {
    if (endpoint.certificate !== null && !endpoint.url.startsWith('https:'))
      throw new RangeError(`a pinned certificate needs https://, not ${endpoint.url}`);
    const key = `${endpoint.url}\n${endpoint.certificate ?? ''}`;
    let found = endpoints.get(key);
    if (found === undefined) {
      const dispatcher =
        endpoint.certificate === null
          ? createUnpinnedDispatcher()
          : createPinnedDispatcher(endpoint.certificate, identity);
      found = { dispatcher, turns: turnsOf(CONNECTIONS_PER_AGENT) };
      endpoints.set(key, found);
    }
    return found;
  };
  /**
   * Runs `attempt` over the endpoint's dispatcher once one of its connections is this caller's turn, until it is done
   * (its answer, or its error's body, read: the connection is free again only then).
   */
  const onTurn = async <T>(
    endpoint: AgentEndpoint,
    attempt: (via: { readonly dispatcher: FetchDispatcher }) => Promise<T>,
  ): Promise<T> => {
    const { dispatcher, turns } = reach(endpoint);
    const done = await turns.take();
    try {
      // undici's own Agent; Node's types name the same interface from undici-types.
      return await attempt({ dispatcher: dispatcher as unknown as FetchDispatcher });
    } finally {
      done();
    }
  };

  return {
    async info(endpoint) {
      const { url } = endpoint;
      try {
        return await onTurn(endpoint, async (via) => {
          const response = await http.get(`${url}/v1/info`, { signal: deadline(), ...via });
          const json = JSON.parse(await readLimited(response, MAX_INFO_BYTES, url)) as unknown;
          const parsed = infoSchema.safeParse(json);
          if (!parsed.success)
            throw new AgentCallError('bad_answer', url, 'info', `${url}/v1/info is not an agent's info`);
          return parsed.data;
        });
      } catch (error) {
        throw await toCallError(error, url, 'info', 1, { url, pinned: endpoint.certificate !== null });
      }
    },

    async certificate(url) {
      try {
        return await fetchCertificate(new URL(url), identity, options.timeoutMs);
      } catch (error) {
        throw await toCallError(error, url, 'info', 1, { url, pinned: true });
      }
    },

    async close() {
      const open = [...endpoints.values()];
      endpoints.clear();
      await Promise.all(open.map(({ dispatcher }) => dispatcher.close()));
    },

    async send(target, kind, body, sendOptions = {}) {
      const url = `${target.url}${ENDPOINTS[kind]}`;
      // Signed now, before any wait for a turn: a flow arms its guards before it sends (place.ts, GUARD_DELAY_MS),
      // counting on no command it sends being valid later than its call plus its life. One that waits longer than
      // its life for a turn is refused `expired` by the agent, having applied nothing. A retry sends the same bytes.
      const signed = signCommand(target, kind, body);
      const bytes = Math.max(signed.text.length, sendOptions.bytes ?? 0);
      const asked = refsOf(body);
      const cap = answerByteCap(kind, asked?.length ?? 0);
      const limit = Math.min(sendOptions.maxAnswerBytes ?? cap, cap);
      for (let attempt = 1; ; attempt++) {
        let failure: AgentCallError;
        try {
          return await onTurn(target, async (via) => {
            try {
              const response = await http.post(url, {
                body: signed.text,
                headers: headersFor(kind, bytes),
                signal: deadline(bytes),
                ...via,
              });
              const answer = await readLimited(response, limit, target.uuid, kind);
              return openAnswer(answer, target, kind, signed.requestId, asked);
            } catch (error) {
              // Made while the connection is still this attempt's: an error's body is read here.
              throw await toCallError(error, target.uuid, kind, attempt, viaOf(target));
            }
          });
        } catch (error) {
          // The attempt's failure as it is, or a host that cannot be reached at all (a certificate without https://).
          failure = await toCallError(error, target.uuid, kind, attempt, viaOf(target));
        }
        const transient =
          failure.failure === 'unreachable' || failure.failure === 'timeout' || (failure.details.status ?? 0) >= 500;
        if (!transient || attempt > options.retries) throw failure;
        await delay((options.backoffMs ?? 200) * 2 ** (attempt - 1));
      }
    },
  };

  function signCommand<K extends CommandKind>(
    target: AgentTarget,
    kind: K,
    body: CommandBody<K>,
  ): { readonly text: string; readonly requestId: string } {
    const command = buildCommand(kind, target.uuid, body, {
      now: options.now(),
      ...(options.commandLifetimeMs === undefined ? {} : { lifetimeMs: options.commandLifetimeMs }),
    });
    return { text: JSON.stringify(signEnvelope(COMMAND_CONTEXT, command, options.key)), requestId: command.requestId };
  }
}

/** The states a command names, one result each in its answer, in order; none for a listing. */
function refsOf(body: object): readonly FileRef[] | undefined {
  if ('ops' in body) return body.ops as readonly FileRef[];
  if ('files' in body) return body.files as readonly FileRef[];
  return undefined;
}

function openAnswer<K extends CommandKind>(
  text: string,
  target: AgentTarget,
  kind: K,
  requestId: string,
  asked: readonly FileRef[] | undefined,
): AnswerFor<K> {
  const bad = (why: string): AgentCallError =>
    new AgentCallError('bad_answer', target.uuid, kind, `the agent's answer ${why}`);
  const envelope = parseEnvelope(text);
  if (!envelope.ok) throw bad(`is not an envelope: ${envelope.error.message}`);
  const pinned = trustedKeyFromBase64(target.publicKey);
  const payload = verifyEnvelope(envelope.value, ANSWER_CONTEXT, (id) =>
    id === pinned.keyId ? pinned.key : undefined,
  );
  if (!payload.ok) throw bad(`is not signed by the pinned key: ${payload.error.message}`);
  const answer = parseAnswer(payload.value, kind);
  if (!answer.ok) throw bad(`is malformed: ${answer.error.message}`);
  if (answer.value.requestId !== requestId) throw bad(`is for request ${answer.value.requestId}, not ${requestId}`);
  if (answer.value.hostUuid !== target.uuid) throw bad(`comes from host ${answer.value.hostUuid}, not ${target.uuid}`);
  // One result per state asked about, each for that state: the flows read them by position.
  if (asked !== undefined) {
    const results: readonly FileRef[] = answer.value.results;
    if (results.length !== asked.length) throw bad(`has ${results.length} results for ${asked.length} states`);
    const off = results.findIndex((r, i) => {
      const state = asked[i];
      return state === undefined || r.type !== state.type || r.path !== state.path;
    });
    if (off !== -1) throw bad(`has result ${off} for another state than the command's`);
  }
  return answer.value;
}

/** How a call went: its URL, and whether over TLS to a pinned certificate. */
interface Via {
  readonly url: string;
  readonly pinned: boolean;
}

const viaOf = (endpoint: AgentEndpoint): Via => ({ url: endpoint.url, pinned: endpoint.certificate !== null });

/**
 * Why a connection the agent closed at once most likely was, said with it ("other side closed" alone names no
 * cause): plain HTTP to an agent that serves HTTPS, or a controller whose key the agent does not trust (mutual TLS:
 * it closes the handshake of a client whose key is not among its trustedKeys, the commonest slip in setting one up).
 */
function closedHint(reason: string, via: Via): string {
  if (!/other side closed|ECONNRESET|socket hang up|EPIPE/.test(reason)) return '';
  if (via.url.startsWith('http:')) {
    return ' (an agent that serves HTTPS closes a plain HTTP connection at once: does its URL need https://?)';
  }
  if (!via.pinned) return '';
  return (
    " (an agent closes the connection of a controller it does not trust at once: is this controller's public key " +
    "in the agent's trustedKeys? Its log says client_refused, untrusted_key)"
  );
}

/** `via.pinned`: the call went over TLS to the host's pinned certificate, so an error answer is the agent's own. */
async function toCallError(
  error: unknown,
  host: string,
  kind: CommandKind | 'info',
  attempts: number,
  via: Via,
): Promise<AgentCallError> {
  const { pinned } = via;
  if (isAgentCallError(error)) return error;
  if (isTimeoutError(error) || (error instanceof DOMException && error.name === 'TimeoutError'))
    return new AgentCallError('timeout', host, kind, 'no answer in time', { attempts }, { cause: error });
  if (isHTTPError(error)) {
    const status = error.response.status;
    let agentCode: string | undefined;
    let message = `HTTP ${status}`;
    try {
      // Capped like every answer: a hostile or broken agent's endless error body must not fill the controller.
      const text = await readLimited(error.response, MAX_ERROR_BYTES, host, kind);
      const body = errorBodySchema.safeParse(JSON.parse(text));
      if (body.success) {
        agentCode = body.data.error.code;
        message = `${agentCode}: ${clip(body.data.error.message)}`;
      }
    } catch {
      // Not JSON, or over the cap: the status alone says it.
      agentCode = undefined;
    }
    return new AgentCallError(
      'refused',
      host,
      kind,
      message,
      { status, attempts, pinned, ...(agentCode === undefined ? {} : { agentCode }) },
      { cause: error },
    );
  }
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  const pinFailure = pinFailureOf(cause);
  if (pinFailure !== undefined) {
    const message =
      `TLS: the peer is not the pinned agent (${pinFailure}): ${(cause as Error).message}; if the agent's key was ` +
      'made anew on purpose, `hostfiles host repin HOST --expect-key KEY` pins it';
    return new AgentCallError('unreachable', host, kind, message, { attempts, pinFailure }, { cause: error });
  }
  const reason = cause instanceof Error ? cause.message : String(cause);
  const errnos = errnosOf(cause);
  return new AgentCallError(
    'unreachable',
    host,
    kind,
    reason + closedHint(reason, via),
    { attempts, ...(errnos.length === 0 ? {} : { errnos }) },
    { cause: error },
  );
}

/**
 * The system error codes of a connection's failure: a connect to a name of several addresses fails as Node's
 * AggregateError, whose own code is only the first address's; each address's is in its `errors`. A failure with no
 * code is left out, or given `codeless` when one is.
 */
export function errnosOf(cause: unknown, codeless?: string): string[] {
  const codeOf = (error: unknown): string | undefined => {
    const code = (error as { code?: unknown } | undefined)?.code;
    return typeof code === 'string' ? code : codeless;
  };
  const each = cause instanceof AggregateError ? cause.errors.map(codeOf) : [codeOf(cause)];
  return each.filter((code) => code !== undefined);
}

/**
 * The verification codes OpenSSL gives a certificate that does not chain to the pinned one (the only CA), and
 * ours for one that does but holds another key.
 */
const PIN_FAILURES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  PIN_MISMATCH,
]);

function pinFailureOf(cause: unknown): string | undefined {
  const code = (cause as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && PIN_FAILURES.has(code) ? code : undefined;
}

const MAX_INFO_BYTES = 64 * 1024;
/** An agent's refusal is a code and a sentence; past this the body is dropped unread and the status stands alone. */
const MAX_ERROR_BYTES = 16 * 1024;
/** What of an agent's error message reaches logs and reports. */
const MAX_MESSAGE_CHARS = 512;

const clip = (text: string): string =>
  text.length <= MAX_MESSAGE_CHARS ? text : `${text.slice(0, MAX_MESSAGE_CHARS)}… (${text.length} chars)`;

/** The body as text, refused past `limit` bytes: a hostile or broken agent can't exhaust the controller's memory. */
async function readLimited(
  response: Response,
  limit: number,
  host: string,
  kind: CommandKind | 'info' = 'info',
): Promise<string> {
  const body = response.body as ReadableStream<Uint8Array> | null;
  const encoding = response.headers.get('content-encoding');
  if (encoding !== null && encoding.trim().toLowerCase() !== 'identity') {
    // An agent never encodes its answers, and was asked not to: nothing of it is inflated, or read.
    await body?.cancel().catch(() => undefined);
    throw new AgentCallError('bad_answer', host, kind, `the answer is encoded (${clip(encoding)}): an agent never is`);
  }
  const tooLarge = (): AgentCallError =>
    new AgentCallError('bad_answer', host, kind, `the answer is over ${limit} bytes`);
  return (await readCapped(body, limit, tooLarge)).toString('utf8');
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** At most `size` holders at once; the others wait, first come first served. `take` answers the way to give it back. */
interface Turns {
  take(): Promise<() => void>;
}

function turnsOf(size: number): Turns {
  let free = size;
  const waiting: (() => void)[] = [];
  return {
    async take() {
      if (free > 0) free -= 1;
      else await new Promise<void>((resolve) => waiting.push(resolve));
      let given = false;
      return () => {
        if (given) return;
        given = true;
        // Handed straight to the next in line, or back to the pool.
        const next = waiting.shift();
        if (next === undefined) free += 1;
        else next();
      };
    },
  };
}

// createApp(deps) → Hono. It never listens: main.ts (or a test) serves it.
import { Hono, type Context } from 'hono';
import { ANSWER_WITHIN_HEADER, truncate } from '@hostfiles/shared';
import type { AppDeps } from './deps.js';
import { isAgentError } from './errors.js';
import { createLogLimit } from './limits/log-limit.js';
import { NO_METRICS } from './metrics/agent-metrics.js';
import { prepareApply } from './routes/files.js';
import { prepareBusy, prepareList, prepareRead, prepareStat } from './routes/reads.js';
import { createSignedHandler, type Bindings } from './routes/signed.js';

/** The longest error message an answer or a log line carries. */
const MAX_MESSAGE_CHARS = 300;
/**
 * Refusals of requests that are not a trusted controller's (Bindings' `trusted`: before the signature verified, and
 * of signed envelopes for another host, out of their time, or replayed) are logged at most this often (each second);
 * the rest are counted.
 */
const UNTRUSTED_REFUSALS_PER_SECOND = 20;

export function createApp(deps: AppDeps): Hono<Bindings> {
  const app = new Hono<Bindings>();
  const untrustedRefusals = createLogLimit(UNTRUSTED_REFUSALS_PER_SECOND, deps.now);
  const metrics = deps.metrics ?? NO_METRICS;
  /** Whether the request came on a connection proven a controller's (or, in-process, is a trusted command). */
  const proven = (c: Context<Bindings>): boolean => {
    const socket = (c.env as Bindings['Bindings'] | undefined)?.incoming?.socket;
    if (socket === undefined || deps.connectionTrusted === undefined) return c.get('trusted');
    return deps.connectionTrusted(socket);
  };
  /** Strangers' connections that were refused once: closing, and nothing more they sent is checked. */
  const refused = new WeakSet<object>();
  /** A stranger's refusal closes its connection (see DESIGN.md, Limits). */
  const closeStranger = (c: Context<Bindings>): void => {
    if (proven(c)) return;
    c.header('connection', 'close');
    const socket = (c.env as Bindings['Bindings'] | undefined)?.incoming?.socket;
    if (socket !== undefined) refused.add(socket);
  };

  // Bytes in flight say how loaded the agent is, nothing about what it holds: safe to tell anyone who asks.
  app.get('/v1/health', (c) => c.json({ status: 'ok', bodyBytesInFlight: deps.bodyBudget.inFlight() }));
  app.get('/v1/info', (c) =>
    c.json({
      hostUuid: deps.hostUuid,
      version: deps.version,
      publicKey: deps.signer.publicKey,
      keyId: deps.signer.keyId,
      startedAt: deps.startedAt,
    }),
  );
  const signed = createSignedHandler(deps, (socket) => refused.has(socket));
  app.post('/v1/files/apply', (c) => signed(c, 'files.apply', (command) => prepareApply(deps, command)));
  app.post('/v1/files/read', (c) => signed(c, 'files.read', (command) => prepareRead(deps, command)));
  app.post('/v1/files/list', (c) =>
    signed(c, 'files.list', (command) =>
      prepareList(deps, command, closedEarly(c.env)?.signal, headerOf(c, ANSWER_WITHIN_HEADER)),
    ),
  );
  app.post('/v1/files/stat', (c) => signed(c, 'files.stat', (command) => prepareStat(deps, command)));
  app.post('/v1/files/busy', (c) => signed(c, 'files.busy', (command) => prepareBusy(deps, command)));

  app.notFound((c) => {
    closeStranger(c);
    metrics.refused('not_found');
    return c.json(
      { error: { code: 'not_found', message: `no route ${truncate(c.req.method)} ${truncate(c.req.path)}` } },
      404,
    );
  });
  app.onError((error, c) => {
    // Messages repeat input only as short prefixes; the cap here keeps every refusal and log line small regardless.
    const path = truncate(c.req.path);
    if (isAgentError(error)) {
      metrics.refused(error.code);
      const message = truncate(error.message, MAX_MESSAGE_CHARS);
      // A trusted controller's refused command is always logged; anyone else's at a bounded rate.
      const skipped = c.get('trusted') ? 0 : untrustedRefusals.admit();
      if (skipped !== undefined) {
        const fields = { path, code: error.code, status: error.status, message };
        deps.logger.warn('refused', skipped > 0 ? { ...fields, skipped } : fields);
      }
      // A body refused unread is not drained for keep-alive: the connection closes. So does a stranger's connection
      // at any refusal: each envelope it could send again costs a signature verification (~0.2 ms), and a new
      // connection is paced per address (newConnectionsPerSecond) where requests on one kept alive are not.
      if (error.code === 'too_large' || error.code === 'overloaded') c.header('connection', 'close');
      closeStranger(c);
      if (error.code === 'overloaded') c.header('retry-after', '1');
      return c.json({ error: { code: error.code, message } }, error.status);
    }
    metrics.refused('internal');
    closeStranger(c);
    const message = truncate(error.message, MAX_MESSAGE_CHARS);
    deps.logger.error('internal_error', { path, error: truncate(error.name), message });
    return c.json({ error: { code: 'internal', message: 'internal error' } }, 500);
  });
  return app;
}

/** A request header's value; from the IncomingMessage when there is one (hono's Request would be built for it). */
function headerOf(c: Context<Bindings>, name: string): string | undefined {
  const incoming = (c.env as Bindings['Bindings'] | undefined)?.incoming;
  if (incoming === undefined) return c.req.header(name);
  const value = incoming.headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

/**
 * Aborted if the request's connection closes before its answer was sent (the controller gave up on this attempt).
 * From the response's own close, not c.req.raw.signal: that would make hono read the body, which the agent reads.
 */
function closedEarly(env: Bindings['Bindings'] | undefined): AbortController | undefined {
  const outgoing = env?.outgoing;
  if (outgoing === undefined) return undefined;
  const controller = new AbortController();
  // Already gone while its body was read and checked: the close was before the listener.
  if (outgoing.destroyed && !outgoing.writableFinished) controller.abort();
  else {
    outgoing.once('close', () => {
      if (!outgoing.writableFinished) controller.abort();
    });
  }
  return controller;
}

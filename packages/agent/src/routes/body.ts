// Reads a request body with a hard cap, within the agent's budget of body bytes in flight, never buffering more than
// the cap whatever the headers claim. hono's bodyLimit costs ~6x CPU per request under @hono/node-server; this is a
// Content-Length check plus a counted read.
import type { IncomingMessage } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { AgentError } from '../errors.js';
import type { BodyClaim } from '../limits/body-budget.js';

/** A body sent without Content-Length starts with room for this much, and doubles as it grows. */
const FIRST_CAPACITY = 16 * 1024;

export async function readCappedBody(
  incoming: IncomingMessage | undefined,
  request: Request,
  limit: number,
  claim: BodyClaim,
): Promise<Buffer> {
  // Node's own parsed headers when there are some: a web Headers object is built only when asked for.
  const declared =
    incoming === undefined ? request.headers.get('content-length') : (incoming.headers['content-length'] ?? null);
  if (declared !== null && !(/^\d+$/.test(declared) && Number(declared) <= limit)) {
    throw tooLarge(limit, declared);
  }
  const sink = createSink(limit, claim, declared === null ? undefined : Number(declared));
  // Under @hono/node-server read the node stream directly; in-process (app.request) read the web stream.
  return incoming === undefined ? readWebStream(request.body, sink) : readNodeStream(incoming, sink);
}

interface Sink {
  /** the error that ends the read, if this chunk is one too many */
  push(chunk: Uint8Array): AgentError | undefined;
  /** how long to wait before reading on (large bodies are paced) */
  pace(bytes: number): number;
  body(): Buffer;
}

/**
 * Chunks are copied into one buffer as they arrive, never kept: a sender trickling a byte at a time would otherwise
 * hold a Buffer object per byte, many times what the budget counts. The buffer is the declared size, taken from the
 * budget before anything is read; without a declared size it grows, each new buffer taken from the budget first. It
 * comes from the claim, which may hand out one an earlier body gave back, and takes it back when the request ends.
 */
function createSink(limit: number, claim: BodyClaim, declared: number | undefined): Sink {
  let capacity = declared ?? Math.min(limit, FIRST_CAPACITY);
  if (!claim.take(capacity)) throw overloaded();
  let buffer = claim.buffer(capacity);
  let size = 0;
  return {
    push(chunk) {
      const needed = size + chunk.byteLength;
      if (needed > limit) return tooLarge(limit);
      if (needed > capacity) {
        // Node's parser never delivers more than Content-Length; a web stream (in-process) could.
        if (declared !== undefined) return new AgentError('bad_request', 'the body is longer than its Content-Length');
        // The buffer it outgrew is given back once copied (to the pool, and its bytes to the budget): the claim
        // holds what the body keeps in memory, its one buffer.
        const grown = Math.min(limit, Math.max(needed, capacity * 2));
        const next = claim.regrow(buffer, size, grown);
        if (next === undefined) return overloaded();
        buffer = next;
        capacity = grown;
      }
      buffer.set(chunk, size);
      size = needed;
      return undefined;
    },
    pace: (bytes) => claim.pace(bytes),
    body: () => (size === capacity ? buffer : buffer.subarray(0, size)),
  };
}

function readNodeStream(incoming: IncomingMessage, sink: Sink): Promise<Buffer> {
  // Not `for await`: leaving that loop early destroys the socket before the 413 can be sent.
  return new Promise((resolve, reject) => {
    const fail = (error: Error): void => {
      // Stop buffering; Node discards the rest once the answer is sent, and the answer closes the connection.
      cleanup();
      reject(error);
    };
    const onData = (chunk: Buffer): void => {
      const error = sink.push(chunk);
      if (error !== undefined) {
        fail(error);
        return;
      }
      // Paused, the socket is not read: the sender waits, and the bytes wait in the kernel, not here.
      const wait = sink.pace(chunk.length);
      if (wait === 0) return;
      incoming.pause();
      setTimeout(() => incoming.resume(), wait).unref();
    };
    const onEnd = (): void => {
      cleanup();
      resolve(sink.body());
    };
    // A connection that dies mid-body (the client gone, a request timeout) ends the read, so its budget comes back.
    // It is the sender's doing, refused like any bad request, never an internal error.
    const onClose = (cause?: Error): void => {
      fail(new AgentError('bad_request', 'the connection closed before the whole body arrived', { cause }));
    };
    const cleanup = (): void => {
      incoming.off('data', onData).off('end', onEnd).off('error', onClose).off('close', onClose);
    };
    incoming.on('data', onData).on('end', onEnd).on('error', onClose).on('close', onClose);
    if (incoming.destroyed) onClose();
  });
}

async function readWebStream(body: ReadableStream<Uint8Array> | null, sink: Sink): Promise<Buffer> {
  if (body === null) return sink.body();
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return sink.body();
    const error = sink.push(value);
    if (error !== undefined) {
      await reader.cancel();
      throw error;
    }
    const wait = sink.pace(value.byteLength);
    if (wait > 0) await delay(wait);
  }
}

function tooLarge(limit: number, declared?: string): AgentError {
  const what = declared === undefined ? 'the body' : `the declared body (${declared.slice(0, 20)} bytes)`;
  return new AgentError('too_large', `${what} is over the limit of ${limit} bytes`);
}

/**
 * One error for every body past the budget, made once: under a flood of them, capturing a stack trace for each was
 * the largest single cost of refusing one (~25 µs). It says nothing about the request, so it can be shared.
 */
const OVERLOADED = new AgentError(
  'overloaded',
  'the agent holds as many request bodies as it takes at once: try again shortly',
);
const overloaded = (): AgentError => OVERLOADED;

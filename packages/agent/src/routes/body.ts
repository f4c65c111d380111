// Reads a request body with a hard cap, without buffering more than the cap whatever the headers claim.
// hono's bodyLimit costs ~6x CPU per request under @hono/node-server; this is a Content-Length check plus a counted read.
import type { IncomingMessage } from 'node:http';
import { readCapped } from '@hostfiles/shared';
import { AgentError } from '../errors.js';

export async function readCappedBody(
  incoming: IncomingMessage | undefined,
  request: Request,
  limit: number,
): Promise<Buffer> {
  const declared = request.headers.get('content-length');
  if (declared !== null && !(/^\d+$/.test(declared) && Number(declared) <= limit)) {
    throw tooLarge(limit, declared);
  }
  // Under @hono/node-server read the node stream directly; in-process (app.request) read the web stream.
  return incoming === undefined
    ? readCapped(request.body, limit, () => tooLarge(limit))
    : readNodeStream(incoming, limit);
}

function readNodeStream(incoming: IncomingMessage, limit: number): Promise<Buffer> {
  // Not `for await`: leaving that loop early destroys the socket before the 413 can be sent.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        // Stop buffering; Node discards the rest once the answer is sent, and the answer closes the connection.
        cleanup();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks, size));
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const cleanup = (): void => {
      incoming.off('data', onData).off('end', onEnd).off('error', onError);
    };
    incoming.on('data', onData).on('end', onEnd).on('error', onError);
  });
}

function tooLarge(limit: number, declared?: string): AgentError {
  const what = declared === undefined ? 'the body' : `the declared body (${declared.slice(0, 20)} bytes)`;
  return new AgentError('too_large', `${what} is over the limit of ${limit} bytes`);
}

// HTTP/1.1 spoken by hand over a socket, for what fetch will not do: headers without the body they announce, a body
// sent in pieces and left unfinished, a connection cut mid-request, a connection that must be seen to be refused.
import { connect, type Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';

export interface RawConnection {
  readonly socket: Socket;
  /** everything the server sent, once it closed the connection (or it was destroyed here) */
  readonly closed: Promise<string>;
  /** what the server sent so far */
  received(): string;
}

/** A connection to 127.0.0.1:`port` (from `localAddress`, another loopback address, when given), once connected. */
export async function openRaw(port: number, localAddress?: string): Promise<RawConnection> {
  const socket = connect({ port, host: '127.0.0.1', ...(localAddress === undefined ? {} : { localAddress }) });
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  const closed = new Promise<string>((resolve) => {
    socket.once('close', () => {
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
  });
  // A reset by the server is a way of closing, not a test failure.
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve).once('error', reject);
  });
  return { socket, closed, received: () => Buffer.concat(chunks).toString('latin1') };
}

/** The head of a POST to `path`; `length` undefined sends the body chunked. */
export function postHead(path: string, length: number | undefined, extra = ''): string {
  const framing = length === undefined ? 'Transfer-Encoding: chunked' : `Content-Length: ${length}`;
  return `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${framing}\r\n${extra}\r\n`;
}

/** One chunk of a chunked body. */
export const chunk = (data: Buffer): Buffer =>
  Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')]);

export interface RawResponse {
  readonly status: number;
  readonly headers: ReadonlyMap<string, string>;
  readonly body: string;
}

/** Parses what a server sent on a connection it closed after one answer (Content-Length framed). */
export function parseResponse(text: string): RawResponse {
  const end = text.indexOf('\r\n\r\n');
  if (end === -1) throw new Error(`no complete answer: ${JSON.stringify(text.slice(0, 200))}`);
  const [statusLine = '', ...lines] = text.slice(0, end).split('\r\n');
  const headers = new Map(
    lines.map((line) => {
      const colon = line.indexOf(':');
      return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()] as const;
    }),
  );
  return { status: Number(statusLine.split(' ')[1]), headers, body: text.slice(end + 4) };
}

/** Resolves with `promise`, or fails saying `what` did not happen within `ms`: a bound, never a wait for timing. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  const controller = new AbortController();
  const timeout = delay(ms, undefined, { signal: controller.signal }).then(() => {
    throw new Error(`${what}: not within ${ms} ms`);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    controller.abort();
    timeout.catch(() => undefined);
  }
}

/** The agent's /v1/health over a fresh connection that it closes after answering (no pooled keep-alive socket). */
export async function health(port: number): Promise<{ status: string; bodyBytesInFlight?: number }> {
  const connection = await openRaw(port);
  connection.socket.write('GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
  const answer = parseResponse(await within(connection.closed, 5000, 'a health answer'));
  if (answer.status !== 200) throw new Error(`health answered ${answer.status}`);
  return JSON.parse(answer.body) as { status: string; bodyBytesInFlight?: number };
}

/** Asks `check` again every few milliseconds until it holds; fails saying `what` after `ms`. */
export async function eventually(check: () => Promise<boolean> | boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await delay(10);
  }
}

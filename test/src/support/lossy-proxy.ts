// A proxy in front of a real agent for fault tests: it passes everything, tells what each command it passed asked
// for, and on demand loses the answers to files.apply after the agent ran them (the outcome a controller cannot
// know), or answers them with a refusal of its own making (an error answer is not signed). It listens on loopback
// plain HTTP and reaches the agent over its pinned TLS connection.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseEnvelope } from '@hostfiles/shared';
import { fetchAgent } from './tls.js';

/** A command the proxy passed: its kind, and how many ops (apply) or files (read, stat) it carried. */
export interface PassedCommand {
  readonly kind: string;
  readonly items: number;
}

/** A proxy in front of an agent that passes everything but can lose the answers to writes (after they ran). */
export async function lossyProxy(target: string): Promise<{
  url: string;
  lose: (on: boolean) => void;
  /** from now on, each files.apply the agent ran is answered `400 bad_request` instead of with its signed answer */
  forgeRefusals: (on: boolean) => void;
  /** every signed command passed so far, in the order they arrived */
  commands: () => readonly PassedCommand[];
  close(): Promise<void>;
}> {
  let losing = false;
  let forging = false;
  const passed: PassedCommand[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.method === 'POST') passed.push(commandOf(Buffer.concat(chunks)));
      void (async () => {
        const answer = await fetchAgent(`${target}${req.url ?? '/'}`, {
          method: req.method ?? 'GET',
          headers: { 'content-type': 'application/json' },
          ...(req.method === 'POST' ? { body: Buffer.concat(chunks) } : {}),
        });
        const body = Buffer.from(await answer.arrayBuffer());
        if (losing && req.url === '/v1/files/apply') {
          req.socket.destroy();
          return;
        }
        if (forging && req.url === '/v1/files/apply') {
          res.writeHead(400, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: { code: 'bad_request', message: 'made up on the way' } }));
          return;
        }
        res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
        res.end(body);
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    lose: (on) => {
      losing = on;
    },
    forgeRefusals: (on) => {
      forging = on;
    },
    commands: () => [...passed],
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}

function commandOf(body: Buffer): PassedCommand {
  const envelope = parseEnvelope(body.toString('utf8'));
  if (!envelope.ok) return { kind: 'not an envelope', items: 0 };
  const command = JSON.parse(Buffer.from(envelope.value.payload, 'base64').toString('utf8')) as {
    kind: string;
    ops?: unknown[];
    files?: unknown[];
  };
  return { kind: command.kind, items: (command.ops ?? command.files ?? []).length };
}

/**
 * A network that drops every files.apply on the way (the controller's attempts all fail) but keeps the bytes, and
 * delivers them to the agent later, when told: the delayed delivery of a captured command.
 */
export async function capturingProxy(target: string): Promise<{
  url: string;
  /** the captured bodies so far */
  captured: () => number;
  /** sends every captured body to the agent now; their statuses */
  deliver: () => Promise<number[]>;
  /** from now on, applies pass through too */
  heal: () => void;
  close(): Promise<void>;
}> {
  const held: Buffer[] = [];
  let capturing = true;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (capturing && req.url === '/v1/files/apply') {
        held.push(Buffer.concat(chunks));
        req.socket.destroy();
        return;
      }
      void fetchAgent(`${target}${req.url ?? '/'}`, {
        method: req.method ?? 'GET',
        headers: { 'content-type': 'application/json' },
        ...(req.method === 'POST' ? { body: Buffer.concat(chunks) } : {}),
      }).then(async (answer) => {
        res.writeHead(answer.status, { 'content-type': 'application/json' }).end(await answer.text());
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    captured: () => held.length,
    heal: () => {
      capturing = false;
    },
    deliver: async () => {
      const statuses: number[] = [];
      for (const body of held.splice(0)) {
        const answer = await fetchAgent(`${target}/v1/files/apply`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        });
        await answer.arrayBuffer();
        statuses.push(answer.status);
      }
      return statuses;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}

// A proxy in front of a real agent for fault tests: it passes everything, and on demand loses the answers to
// files.apply after the agent ran them (the outcome a controller cannot know). It listens on loopback plain HTTP and
// reaches the agent over its pinned TLS connection.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fetchAgent } from './tls.js';

/** A proxy in front of an agent that passes everything but can lose the answers to writes (after they ran). */
export async function lossyProxy(
  target: string,
): Promise<{ url: string; lose: (on: boolean) => void; close(): Promise<void> }> {
  let losing = false;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
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
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}

// What hono on @hono/node-server costs per request beside a bare node:https handler, with nothing else in either:
// both read a 700-byte body the way the agent reads one (the IncomingMessage's own events) and answer 600 bytes, over
// the benchmark's mutual TLS (transport.ts), built the same way and driven by the same 16 keep-alive clients.
// Client and servers run in this process, so the CPU figure is the process's per request: the client's share is the
// same for both, and the difference is the framework's. Rounds alternate between the two; medians are printed.
//
//   node packages/agent/dist/bench/framework-cost.js
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import { generateSigningKey } from '@hostfiles/shared';
import { median, runLoad } from './load.js';
import { transportKit, type Identities } from './transport.js';

const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 9);
const REQUESTS = 3000;
const CLIENTS = 16;
const BODY = Buffer.alloc(700, 0x61);
const ANSWER = 'x'.repeat(600);

/** The body's bytes, read as the agent's readCappedBody reads them under @hono/node-server. */
const readBody = (incoming: IncomingMessage): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      resolve(Buffer.concat(chunks));
    });
    incoming.on('error', reject);
  });

function bare(): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    void readBody(req).then(() => res.writeHead(200, { 'content-type': 'application/json' }).end(ANSWER));
  };
}

/** As main.ts serves the agent's app: node-server's own Request and Response (its default), no draining of bodies. */
function hono(): RequestListener {
  const app = new Hono<{ Bindings: { incoming: IncomingMessage } }>();
  app.post('/v1/files/apply', async (c) => {
    await readBody(c.env.incoming);
    return c.body(ANSWER, 200, { 'content-type': 'application/json' });
  });
  const listener = getRequestListener(app.fetch, { autoCleanupIncoming: false });
  return (req, res) => {
    void listener(req, res);
  };
}

const SIDES = { bare, hono } as const;
type Side = keyof typeof SIDES;

async function main(): Promise<void> {
  const ids: Identities = { serverKeyPem: generateSigningKey().pem, clientKeyPem: generateSigningKey().pem };
  const kit = transportKit('https');
  const servers = Object.fromEntries(
    await Promise.all(
      (Object.keys(SIDES) as Side[]).map(async (side) => {
        const server = kit.createServer(SIDES[side](), ids);
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        return [side, server] as const;
      }),
    ),
  ) as Record<Side, ReturnType<typeof kit.createServer>>;
  const client = kit.createClient(CLIENTS, ids);
  const cpu: Record<Side, number[]> = { bare: [], hono: [] };
  const rate: Record<Side, number[]> = { bare: [], hono: [] };
  const requests = Array.from({ length: REQUESTS }, () => ({ body: BODY, headers: {} }));
  try {
    // The first round of each warms up V8 and the connections, and is not counted.
    for (let round = 0; round <= ROUNDS; round++) {
      const order: Side[] = round % 2 === 0 ? ['bare', 'hono'] : ['hono', 'bare'];
      for (const side of order) {
        const url = `https://127.0.0.1:${(servers[side].address() as AddressInfo).port}/v1/files/apply`;
        const before = process.cpuUsage();
        const { seconds } = await runLoad(client, url, requests, CLIENTS);
        const used = process.cpuUsage(before);
        if (round === 0) continue;
        cpu[side].push((used.user + used.system) / REQUESTS);
        rate[side].push(REQUESTS / seconds);
      }
    }
  } finally {
    client.close();
    for (const server of Object.values(servers)) {
      server.close();
      server.closeAllConnections();
    }
  }
  console.log(`${ROUNDS} alternating rounds of ${REQUESTS} requests from ${CLIENTS} clients, mutual TLS; medians`);
  for (const side of Object.keys(SIDES) as Side[]) {
    console.log(
      `${side.padEnd(5)} ${median(rate[side]).toFixed(0).padStart(6)} req/s  ` +
        `${median(cpu[side]).toFixed(1).padStart(6)} µs CPU/request (client and server)`,
    );
  }
  const extra = median(cpu.hono) - median(cpu.bare);
  console.log(`hono on @hono/node-server: ${extra.toFixed(1)} µs CPU per request more than the bare handler`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

// The attackers of the attack benchmark, each in its own process so their work never slows the controller measured
// beside them. Loopback only; bounded by a deadline and a count. Prints `started` once the attack is under way and
// one JSON line of counts when it ends (at its deadline, or at SIGTERM).
//   slow  <url> <connections> <bodyBytes> <ms>       connections that announce a max-size body and send it slowly
//   flood <url> <senders> <bodyBytes> <keyId> <ms>   senders posting hostile envelopes of max size back to back
import { Agent, request } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { setTimeout as delay } from 'node:timers/promises';

/** slow: a piece of body this size every TRICKLE_MS on each connection (16 KiB/s: a 4 MiB body takes 4 minutes) */
const PIECE_BYTES = 4 * 1024;
const TRICKLE_MS = 250;
/** slow: a connection closed by the agent is opened again after this long */
const RECONNECT_MS = 100;
/** slow: the most connections one run opens in all */
const MAX_OPENED = 50_000;

/**
 * The attackers' own loopback addresses, as attackers on a network have their own, apart from the controller's
 * (127.0.0.1): 127.0.1.1 and up, connection `i` from the `i % ADDRESSES`th. One by default, as in earlier releases'
 * runs: the agent's limits per address (20 new connections a second, 32 open) then hold it. `BENCH_ATTACK_ADDRESSES=32`
 * asks for 1,024 places, past the agent's 256: the slow bodies then hold every place the controller does not, and
 * each new one takes the place of an older stranger's (the agent's connection places).
 */
const ADDRESSES = Number(process.env['BENCH_ATTACK_ADDRESSES'] ?? 1);
if (!Number.isInteger(ADDRESSES) || ADDRESSES < 1 || ADDRESSES > 254) {
  throw new Error('BENCH_ATTACK_ADDRESSES: a whole number from 1 to 254');
}
const fromOf = (i: number): string => `127.0.1.${(i % ADDRESSES) + 1}`;

let stopping = false;
process.once('SIGTERM', () => {
  stopping = true;
});

const [mode = '', url = '', count = '0', bodyBytes = '0', ...rest] = process.argv.slice(2);

async function main(): Promise<void> {
  const target = new URL(url);
  if (target.hostname !== '127.0.0.1') throw new Error('the attack benchmark attacks loopback only');
  const deadline = Date.now() + Number(rest.at(-1));
  const stats =
    mode === 'slow'
      ? await slow(target, Number(count), Number(bodyBytes), deadline)
      : await flood(target, Number(count), Number(bodyBytes), rest[0] ?? '', deadline);
  process.stdout.write(`${JSON.stringify(stats)}\n`);
}

const over = (deadline: number): boolean => stopping || Date.now() >= deadline;

async function slow(target: URL, connections: number, bodyBytes: number, deadline: number): Promise<object> {
  const stats = { opened: 0, answered503: 0, answeredOther: 0, closedUnanswered: 0 };
  const piece = Buffer.alloc(PIECE_BYTES, 0x41);
  const head =
    `POST /v1/files/apply HTTP/1.1\r\nHost: ${target.host}\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${bodyBytes}\r\n\r\n{"payload":"`;
  // Under way once every connection has been tried: connected, or refused by the agent's limits at once.
  let tried = 0;
  const triedOne = (): void => {
    if (++tried === connections) process.stdout.write('started\n');
  };
  const once = (first: boolean, from: string): Promise<void> =>
    new Promise((resolve) => {
      let settled = !first;
      const settle = (): void => {
        if (settled) return;
        settled = true;
        triedOne();
      };
      stats.opened++;
      // Over TLS the attacker has no trusted key: it offers no certificate, as any stranger would.
      const tls = target.protocol === 'https:';
      const raw = { port: Number(target.port), host: target.hostname, localAddress: from };
      const socket = tls ? tlsConnect({ socket: connect(raw), rejectUnauthorized: false }) : connect(raw);
      let received = '';
      let sent = 0;
      let connected = false;
      const timer = setInterval(() => {
        if (over(deadline)) socket.destroy();
        else if (connected && sent + PIECE_BYTES < bodyBytes && socket.writable) {
          socket.write(piece);
          sent += PIECE_BYTES;
        }
      }, TRICKLE_MS);
      socket.on(tls ? 'secureConnect' : 'connect', () => {
        connected = true;
        socket.write(head);
        settle();
      });
      socket.on('data', (chunk: Buffer) => {
        received += chunk.toString('latin1');
      });
      socket.on('error', () => undefined);
      socket.on('close', () => {
        settle();
        clearInterval(timer);
        if (received.startsWith('HTTP/1.1 503')) stats.answered503++;
        else if (received !== '') stats.answeredOther++;
        else if (!over(deadline)) stats.closedUnanswered++;
        resolve();
      });
    });
  const loop = async (from: string): Promise<void> => {
    for (let first = true; !over(deadline) && stats.opened < MAX_OPENED; first = false) {
      await once(first, from);
      if (!over(deadline)) await delay(RECONNECT_MS);
    }
  };
  await Promise.all(Array.from({ length: connections }, (_, i) => loop(fromOf(i))));
  return stats;
}

async function flood(
  target: URL,
  senders: number,
  bodyBytes: number,
  keyId: string,
  deadline: number,
): Promise<object> {
  const bodies = [manyShortKeys(bodyBytes), badSignature(bodyBytes, keyId)];
  const tls = target.protocol === 'https:';
  const agent = tls
    ? new HttpsAgent({ keepAlive: true, maxSockets: senders, rejectUnauthorized: false })
    : new Agent({ keepAlive: true, maxSockets: senders });
  const send = tls ? httpsRequest : request;
  const statuses: Record<string, number> = {};
  let sent = 0;
  const post = (body: Buffer, from: string): Promise<number> =>
    new Promise((resolve) => {
      const req = send(
        target,
        {
          method: 'POST',
          path: '/v1/files/apply',
          agent,
          localAddress: from,
          headers: { 'content-type': 'application/json', 'content-length': body.length },
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            resolve(res.statusCode ?? 0);
          });
        },
      );
      req.on('error', () => {
        resolve(0);
      });
      req.end(body);
    });
  const loop = async (from: string): Promise<void> => {
    while (!over(deadline)) {
      const status = await post(bodies[sent++ % bodies.length] ?? Buffer.alloc(0), from);
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (sent === senders) process.stdout.write('started\n');
    }
  };
  await Promise.all(Array.from({ length: senders }, (_, i) => loop(fromOf(i))));
  agent.destroy();
  return { sent, statuses };
}

/** `{"k0":1,"k1":1,…}` filling `bytes`: the body that cost the general parser ~2 s per 4 MiB. */
function manyShortKeys(bytes: number): Buffer {
  const parts: string[] = [];
  let length = 2;
  for (let i = 0; ; i++) {
    const part = `"k${i}":1`;
    if (length + part.length + 1 > bytes) break;
    parts.push(part);
    length += part.length + 1;
  }
  return Buffer.from(`{${parts.join(',')}}`);
}

/** A well-formed envelope of `bytes` naming the trusted key, whose signature cannot verify: the agent must hash it. */
function badSignature(bytes: number, keyId: string): Buffer {
  const frame = `{"keyId":"${keyId}","payload":"","signature":"${'A'.repeat(86)}=="}`;
  const payloadChars = Math.floor((bytes - frame.length) / 4) * 4;
  return Buffer.from(frame.replace('"payload":""', `"payload":"${'QUFB'.repeat(payloadChars / 4)}"`));
}

main().catch((error: unknown) => {
  process.stderr.write(`attack worker: ${String(error)}\n`);
  process.exitCode = 1;
});

// A man in the middle in front of a real agent: a TLS server with its own key's certificate (the best an attacker on
// the path can present) that relays HTTP to the agent. It may also claim its own key in /v1/info, or answer every
// apply with forged `deleted` results signed by its own key without relaying them.
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import {
  ANSWER_CONTEXT,
  generateSigningKey,
  parseEnvelope,
  signEnvelope,
  tlsIdentity,
  type Command,
  type SigningKey,
} from '@hostfiles/shared';
import { fetchAgent } from './tls.js';

export type ProxyMode = 'relay' | 'own-info' | 'forge-deleted';

export interface TlsProxy {
  readonly url: string;
  /** the key of the certificate it presents */
  readonly key: SigningKey;
  /** HTTP requests it received */
  requests(): number;
  close(): Promise<void>;
}

export async function tlsProxy(target: string, mode: ProxyMode): Promise<TlsProxy> {
  const key = generateSigningKey();
  let requests = 0;
  const server: Server = createServer({ ...tlsIdentity(key), minVersion: 'TLSv1.3' }, (req, res) => {
    requests++;
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks);
        const forged = forge(mode, key, req.url ?? '', body);
        if (forged !== undefined) {
          res.writeHead(200, { 'content-type': 'application/json' }).end(forged);
          return;
        }
        const answer = await fetchAgent(`${target}${req.url ?? '/'}`, {
          method: req.method ?? 'GET',
          headers: { 'content-type': 'application/json' },
          ...(req.method === 'POST' ? { body } : {}),
        });
        let text = await answer.text();
        if (mode === 'own-info' && req.url === '/v1/info') {
          text = JSON.stringify({ ...(JSON.parse(text) as object), publicKey: key.publicKey, keyId: key.keyId });
        }
        res.writeHead(answer.status, { 'content-type': 'application/json' }).end(text);
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    key,
    requests: () => requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}

/** In forge-deleted mode, an apply's answer saying every op deleted, signed by the proxy's key; else undefined. */
function forge(mode: ProxyMode, key: SigningKey, url: string, body: Buffer): string | undefined {
  if (mode !== 'forge-deleted' || url !== '/v1/files/apply') return undefined;
  const envelope = parseEnvelope(body.toString('utf8'));
  if (!envelope.ok) return undefined;
  const command = JSON.parse(Buffer.from(envelope.value.payload, 'base64').toString('utf8')) as Command;
  if (command.kind !== 'files.apply') return undefined;
  const results = command.ops.map((op) => ({ op: op.op, type: op.type, path: op.path, status: 'deleted' }));
  const answer = { requestId: command.requestId, hostUuid: command.hostUuid, kind: command.kind, results };
  return JSON.stringify(signEnvelope(ANSWER_CONTEXT, answer, key));
}

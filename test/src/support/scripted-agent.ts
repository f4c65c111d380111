// An agent that answers signed, well-formed, but scripted results: for the outcomes a real agent gives only when its
// disk fails (an op answering io_error after it changed something), which a test cannot provoke on a real one.
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ANSWER_CONTEXT,
  generateSigningKey,
  parseEnvelope,
  signEnvelope,
  type ApplyResult,
  type Command,
  type CommandKind,
} from '@hostfiles/shared';

export interface ScriptedAgent {
  /** plain HTTP on loopback */
  readonly url: string;
  readonly hostUuid: string;
  readonly publicKey: string;
  /** what each op of the next applies answers */
  answer(result: (op: { type: string; path: string; op: string }) => Pick<ApplyResult, 'status' | 'error'>): void;
  /** the kinds of the signed commands it was sent, in order (those it answered 404 included) */
  readonly received: CommandKind[];
  close(): Promise<void>;
}

export interface ScriptedAgentOptions {
  /** the command kinds it serves; any other answers 404 not_found, as an agent of an older release */
  readonly kinds?: readonly CommandKind[];
  /**
   * The n-th files.apply it receives (from 0; a retry of the same bytes counts too) is refused with this status and
   * error code instead of answered; past the list, or where undefined, it answers as scripted.
   */
  readonly applyRefusals?: readonly ({ readonly status: number; readonly code: string } | undefined)[];
}

const NOT_FOUND = { code: 'not_found', message: 'no such file or directory' };

export async function scriptedAgent(options: ScriptedAgentOptions = {}): Promise<ScriptedAgent> {
  const key = generateSigningKey();
  const hostUuid = randomUUID();
  let script = (): Pick<ApplyResult, 'status' | 'error'> => ({ status: 'written' });
  const received: CommandKind[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      if (req.url === '/v1/info') {
        const info = { hostUuid, version: '0', publicKey: key.publicKey, keyId: key.keyId, startedAt: 0 };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(info));
        return;
      }
      const envelope = parseEnvelope(body);
      if (!envelope.ok) throw new Error('not an envelope');
      const command = JSON.parse(Buffer.from(envelope.value.payload, 'base64').toString('utf8')) as Command;
      const refusal =
        command.kind === 'files.apply'
          ? options.applyRefusals?.[received.filter((kind) => kind === 'files.apply').length]
          : undefined;
      received.push(command.kind);
      if (refusal !== undefined) {
        const error = { error: { code: refusal.code, message: `scripted ${refusal.code}` } };
        res.writeHead(refusal.status, { 'content-type': 'application/json' }).end(JSON.stringify(error));
        return;
      }
      if (options.kinds !== undefined && !options.kinds.includes(command.kind)) {
        const error = { error: { code: 'not_found', message: `no route POST ${req.url ?? ''}` } };
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify(error));
        return;
      }
      // One result per state asked about, as a real agent answers (a controller refuses any other count): the
      // scripted outcome for an apply, nothing there for the rest.
      const results =
        command.kind === 'files.apply'
          ? command.ops.map((op) => ({ op: op.op, type: op.type, path: op.path, ...script() }))
          : command.kind === 'files.read'
            ? command.files.map(({ type, path }) => ({ op: 'read', type, path, status: 'failed', error: NOT_FOUND }))
            : command.kind === 'files.list'
              ? []
              : command.files.map(({ type, path }) => ({ type, path, status: 'absent' }));
      const extra = command.kind === 'files.stat' ? { roots: { TpmState: '/r/tpm', NvRam: '/r/nvram' } } : {};
      const answer = { requestId: command.requestId, hostUuid, kind: command.kind, ...extra, results };
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify(signEnvelope(ANSWER_CONTEXT, answer, key)));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hostUuid,
    publicKey: key.publicKey,
    received,
    answer(result) {
      script = result as () => Pick<ApplyResult, 'status' | 'error'>;
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

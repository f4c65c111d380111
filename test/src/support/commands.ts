// Builds signed commands the way a controller does, and sends them.
import type { AgentHandle } from './agent-process.js';
import {
  ANSWER_CONTEXT,
  buildCommand,
  deleteOp,
  writeOp as sharedWriteOp,
  COMMAND_CONTEXT,
  ENDPOINTS,
  parseAnswer,
  parseEnvelope,
  signEnvelope,
  trustedKeyFromBase64,
  type AnswerFor,
  type ApplyOp,
  type CommandKind,
  type FileType,
  type SigningKey,
  verifyEnvelope,
} from '@hostfiles/shared';
import { fetchAgent } from './tls.js';

export interface CommandOptions {
  readonly requestId?: string;
  readonly issuedAt?: number;
  readonly expiresAt?: number;
}

export function commandPayload(
  kind: CommandKind,
  hostUuid: string,
  body: Record<string, unknown>,
  options: CommandOptions = {},
): Record<string, unknown> {
  const now = options.issuedAt ?? Date.now();
  // Tests build invalid commands too, so the body is untyped and the times may be anything.
  const command: Record<string, unknown> = buildCommand(kind, hostUuid, body as never, {
    now,
    ...(options.requestId === undefined ? {} : { requestId: options.requestId }),
  });
  return options.expiresAt === undefined ? command : { ...command, expiresAt: options.expiresAt };
}

export function signedBody(key: SigningKey, payload: unknown): string {
  return JSON.stringify(signEnvelope(COMMAND_CONTEXT, payload, key));
}

/** shared's writeOp, taking a string too */
export const writeOp = (type: FileType, path: string, content: Buffer | string): ApplyOp =>
  sharedWriteOp(type, path, Buffer.from(content));
export { deleteOp };

export interface Reply {
  readonly status: number;
  readonly text: string;
  readonly json: unknown;
}

export async function post(
  url: string,
  path: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
): Promise<Reply> {
  const response = await fetchAgent(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, text, json };
}

export function errorCode(reply: Reply): string | undefined {
  return (reply.json as { error?: { code?: string } } | undefined)?.error?.code;
}

export function errorMessage(reply: Reply): string | undefined {
  return (reply.json as { error?: { message?: string } } | undefined)?.error?.message;
}

/** Verifies a 200 answer against the agent's public key and parses it. */
export function openAnswer<K extends CommandKind>(reply: Reply, kind: K, agentPublicKey: string): AnswerFor<K> {
  if (reply.status !== 200) throw new Error(`expected 200, got ${reply.status}: ${reply.text}`);
  const envelope = parseEnvelope(reply.text);
  if (!envelope.ok) throw new Error(envelope.error.message);
  const key = trustedKeyFromBase64(agentPublicKey);
  const payload = verifyEnvelope(envelope.value, ANSWER_CONTEXT, (id) => (id === key.keyId ? key.key : undefined));
  if (!payload.ok) throw new Error(payload.error.message);
  const answer = parseAnswer(payload.value, kind);
  if (!answer.ok) throw new Error(answer.error.message);
  return answer.value;
}

export interface AgentClient {
  readonly url: string;
  readonly hostUuid: string;
  readonly key: SigningKey;
  readonly agentPublicKey: string;
}

/** A client for a running agent: its own setup's controller key, the agent's key as it answers /v1/info now. */
export async function clientOf(agent: AgentHandle): Promise<AgentClient> {
  const info = await agentInfo(agent.url);
  return {
    url: agent.url,
    hostUuid: agent.setup.hostUuid,
    key: agent.setup.controllerKey,
    agentPublicKey: info.publicKey,
  };
}

/** Signs and sends one command, returns the verified answer. */
export async function send<K extends CommandKind>(
  client: AgentClient,
  kind: K,
  body: Record<string, unknown>,
  options: CommandOptions = {},
): Promise<AnswerFor<K>> {
  const reply = await post(
    client.url,
    ENDPOINTS[kind],
    signedBody(client.key, commandPayload(kind, client.hostUuid, body, options)),
  );
  return openAnswer(reply, kind, client.agentPublicKey);
}

/** A files.apply answer's results as `[op, status, error code]` rows, to compare with what each op should get. */
export const outcomes = (answer: AnswerFor<'files.apply'>): (string | undefined)[][] =>
  answer.results.map((r) => [r.op, r.status, r.error?.code]);

export async function agentInfo(url: string): Promise<{ publicKey: string; keyId: string; hostUuid: string }> {
  const response = await fetchAgent(`${url}/v1/info`);
  return (await response.json()) as { publicKey: string; keyId: string; hostUuid: string };
}

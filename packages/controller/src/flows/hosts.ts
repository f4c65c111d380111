// Adding a host (its agent's key pinned, and its TLS certificate), moving it to another URL, health checks.
import { randomUUID, X509Certificate } from 'node:crypto';
import {
  certificatePublicKey,
  checkCertificate,
  isExpectedKey,
  isLoopbackHost,
  keyFingerprint,
  parseExpectedKey,
  truncate,
  type AgentInfo,
  type ExpectedKey,
} from '@hostfiles/shared';
import { isAgentCallError } from '../agents/index.js';
import type { Host } from '../store/index.js';
import { FlowError, isFlowError, type FlowDeps } from './deps.js';
import { markHost } from './host-state.js';
import { resolveHost } from './inventory.js';
import { nameProblem } from './resolve.js';
import { OPERATION_KIND } from '../store/types.js';

export interface NewHostInput {
  readonly name: string;
  /** the agent's base URL: https:// (agents serve TLS by default), or http:// on loopback */
  readonly url: string;
  /** the agent's base64 public key or its sha256:… fingerprint, read on the host (`hostfiles-agent info`) */
  readonly expectKey?: string;
  /** pin whatever key the agent presents, with nothing to check it against */
  readonly trustOnFirstUse?: boolean;
  /** http:// to an address that is not loopback */
  readonly allowPlainHttp?: boolean;
}

/**
 * Pins the agent's key, host uuid and TLS certificate. The key is the one the operator expects (or, only when asked,
 * whatever the agent presents): its certificate's key, the key /v1/info names and the expected key must be one key,
 * and the certificate exactly the one the agent derives from it. Anything else is refused and nothing is stored.
 */
export async function addHost(deps: FlowDeps, input: NewHostInput): Promise<Host> {
  const problem = nameProblem(input.name);
  if (problem !== undefined) {
    throw new FlowError('bad_input', `the host name ${truncate(JSON.stringify(input.name))} ${problem}`);
  }
  const url = agentUrl(input.url, input.allowPlainHttp === true);
  const expected = expectation(input);
  const { info, certificate } = await identify(deps, url, expected);
  return deps.store.addHost({
    uuid: info.hostUuid,
    name: input.name,
    url: url.origin,
    publicKey: info.publicKey,
    keyId: info.keyId,
    certificate,
    state: 'Connected',
    lastSeenAt: deps.now(),
  });
}

/**
 * Points a host at another URL — an agent upgraded to TLS (http:// → https://), a new address — after checking the
 * agent there holds the host's pinned key and uuid, and pinning its certificate.
 */
export async function setHostUrl(
  deps: FlowDeps,
  ref: string,
  input: { readonly url: string; readonly allowPlainHttp?: boolean },
): Promise<Host> {
  const host = await resolveHost(deps, ref);
  const url = agentUrl(input.url, input.allowPlainHttp === true);
  const { info, certificate } = await identify(deps, url, { fingerprint: keyFingerprint(host.publicKey) });
  if (info.hostUuid !== host.uuid) {
    throw new FlowError('host_key_mismatch', `the agent at ${url.origin} is host ${info.hostUuid}, not ${host.uuid}`);
  }
  await deps.store.setHostEndpoint(host.uuid, url.origin, certificate);
  return { ...host, url: url.origin, certificate };
}

export const REPIN_HOST = OPERATION_KIND.repinHost;

export interface RepinReport {
  readonly operationId: string;
  readonly hostUuid: string;
  readonly hostName: string;
  readonly url: string;
  /** the fingerprints of the key pinned before, and of the one pinned now (the same when nothing changed) */
  readonly previous: string;
  readonly pinned: string;
  readonly tls: boolean;
  readonly trustedOnFirstUse: boolean;
}

/**
 * Pins the key an agent holds now (its key was regenerated: every call to it is refused as a changed key). The agent
 * at the host's URL is checked as `addHost` checks a new one (its certificate, the key /v1/info names and the expected
 * key are one key), and must be the same host (its uuid): anything else is refused and nothing stored. The new key,
 * the host Connected and the journal row are one transaction.
 */
export async function repinHost(
  deps: FlowDeps,
  ref: string,
  input: Pick<NewHostInput, 'expectKey' | 'trustOnFirstUse'>,
  operationId: string = randomUUID(),
): Promise<RepinReport> {
  const host = await resolveHost(deps, ref);
  const expected = expectation(input);
  const url = new URL(host.url);
  const { info, certificate } = await identify(deps, url, expected);
  if (info.hostUuid !== host.uuid) {
    throw new FlowError(
      'host_key_mismatch',
      `the agent at ${url.origin} is host ${info.hostUuid}, not ${host.name} (${host.uuid}): refusing it, nothing ` +
        'stored (another machine answers there: `hostfiles host add` it under its own name)',
    );
  }
  const report: RepinReport = {
    operationId,
    hostUuid: host.uuid,
    hostName: host.name,
    url: url.origin,
    previous: keyFingerprint(host.publicKey),
    pinned: keyFingerprint(info.publicKey),
    tls: certificate !== null,
    trustedOnFirstUse: expected === undefined,
  };
  await deps.store.transaction(async (tx) => {
    await tx.startOperation({
      id: operationId,
      kind: REPIN_HOST,
      subject: host.uuid,
      step: 'pin',
      input: { host: host.uuid, expectKey: expected?.fingerprint ?? null },
    });
    await tx.setHostKey(host.uuid, { publicKey: info.publicKey, keyId: info.keyId, certificate });
    await tx.setHostState(host.uuid, 'Connected', deps.now());
    await tx.finishOperation(operationId, 'done', report);
  });
  return report;
}

/** What a health check found: the state recorded, and why a host is Disconnected. */
export interface HostHealth {
  readonly state: Host['state'];
  /** Disconnected only: what the call to its agent met (unreachable, timeout, ...) */
  readonly reason?: string;
  /**
   * Disconnected only: nothing answered at the host's address — no answer in time, no route, a name that resolves
   * to nothing. Not so for a peer that answered in any way (refused the connection, closed it, failed the pin,
   * refused the call): someone is there.
   */
  readonly silent?: boolean;
  /** Disconnected only: the call ran out of time (maybe connected, and no answer came): `silent` too */
  readonly timedOut?: boolean;
  /**
   * Disconnected only: the connection was refused (ECONNREFUSED), at any of the host's addresses. The machine there
   * is up and answered (or a firewall in front of it did): nothing listens on the agent's port, its agent is down
   * (stopped, crashed, not started yet), its VMs maybe not.
   */
  readonly refused?: boolean;
}

/**
 * The connection failures that mean nothing is there: the host is down, or gone from the network. Not ECONNREFUSED:
 * a refusal is someone answering (see `refused`).
 */
export const NOTHING_THERE = new Set(['EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENOTFOUND']);

/**
 * What a connection's failure says, from its codes, one per address tried: `refused` when any address refused (a
 * machine up there); `nothingThere` only when every address was nothing there (a name of two addresses, one gone and
 * one refusing, is a machine that is up).
 */
export function connectionFailure(errnos: readonly string[]): { refused: boolean; nothingThere: boolean } {
  return {
    refused: errnos.includes('ECONNREFUSED'),
    nothingThere: errnos.length > 0 && errnos.every((code) => NOTHING_THERE.has(code)),
  };
}

/** A health check: Connected when the agent answers with the pinned key and uuid; a changed key is refused loudly. */
export async function checkHost(deps: FlowDeps, host: Host): Promise<HostHealth> {
  let health: HostHealth;
  const refuse = async (why: string): Promise<never> => {
    const message =
      `host_key_changed: host ${host.name} ${why}: refusing it (if its agent's key was made anew on purpose, ` +
      `\`hostfiles host repin ${host.name} --expect-key KEY\` pins the new one)`;
    await markHost(deps, host, 'Disconnected', message);
    throw new FlowError('host_key_changed', message);
  };
  try {
    const info = await deps.agents.info(host);
    if (info.publicKey !== host.publicKey || info.hostUuid !== host.uuid) {
      await refuse('answers with another key or uuid than the one pinned');
    }
    health = { state: 'Connected' };
  } catch (error) {
    if (isFlowError(error)) throw error;
    const pinFailure = isAgentCallError(error) ? error.details.pinFailure : undefined;
    if (pinFailure !== undefined) await refuse(`presents another TLS certificate than the one pinned (${pinFailure})`);
    const reason = isAgentCallError(error)
      ? `${error.failure}: ${error.message}`
      : error instanceof Error
        ? error.message
        : String(error);
    const timedOut = isAgentCallError(error) && error.failure === 'timeout';
    const errnos = isAgentCallError(error) && error.failure === 'unreachable' ? (error.details.errnos ?? []) : [];
    const { refused, nothingThere } = connectionFailure(errnos);
    const silent = timedOut || nothingThere;
    health = {
      state: 'Disconnected',
      reason,
      ...(silent ? { silent } : {}),
      ...(timedOut ? { timedOut } : {}),
      ...(refused ? { refused } : {}),
    };
  }
  await markHost(deps, host, health.state, health.reason);
  return health;
}

function agentUrl(text: string, allowPlainHttp: boolean): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    // Repeated without what would be its user and password.
    throw new FlowError('bad_input', `${truncate(text.replace(/\/\/[^/]*@/, '//***@'))} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new FlowError('bad_input', 'an agent URL is https (or http on loopback)');
  }
  // Never stored, printed or sent: an agent authenticates by its key, a controller by its own, and a password in a
  // URL would be repeated by every message that names the host's URL.
  if (url.username !== '' || url.password !== '') {
    throw new FlowError('bad_input', 'an agent URL carries no user name or password (the agent is known by its key)');
  }
  if (url.protocol === 'http:' && !allowPlainHttp && !isLoopbackHost(url.hostname)) {
    throw new FlowError(
      'bad_input',
      `plain HTTP to ${url.hostname} would carry state and commands in clear: use https:// (agents serve TLS by ` +
        'default), or allow plain HTTP explicitly (--allow-plain-http; allowPlainHttp in the API)',
    );
  }
  return url;
}

function expectation(input: Pick<NewHostInput, 'expectKey' | 'trustOnFirstUse'>): ExpectedKey | undefined {
  if (input.expectKey !== undefined) {
    if (input.trustOnFirstUse === true) {
      throw new FlowError('bad_input', 'an expected key and trust on first use exclude each other');
    }
    const parsed = parseExpectedKey(input.expectKey);
    if (!parsed.ok) throw new FlowError('bad_input', parsed.error);
    return parsed.value;
  }
  if (input.trustOnFirstUse === true) return undefined;
  throw new FlowError(
    'bad_input',
    'say which key the agent must have: its public key or sha256:… fingerprint, as `hostfiles-agent info` prints it ' +
      'on the host (--expect-key; expectKey in the API), or trust on first use explicitly (--trust-on-first-use; ' +
      'trustOnFirstUse in the API)',
  );
}

/**
 * The agent's info and certificate, checked: over https, the certificate's key is the expected one before any HTTP is
 * sent, /v1/info then travels over a connection pinned to that certificate, and names the same key.
 */
async function identify(
  deps: FlowDeps,
  url: URL,
  expected: ExpectedKey | undefined,
): Promise<{ info: AgentInfo; certificate: string | null }> {
  const mismatch = (what: string, key: string, other: string): FlowError =>
    new FlowError(
      'host_key_mismatch',
      `the agent at ${url.origin} ${what} ${keyFingerprint(key)}, not ${other}: refusing it, nothing stored`,
    );
  if (url.protocol === 'http:') {
    const info = await deps.agents.info({ url: url.origin, certificate: null });
    if (expected !== undefined && !isExpectedKey(expected, info.publicKey)) {
      throw mismatch('answers with key', info.publicKey, `the expected ${expected.fingerprint}`);
    }
    return { info, certificate: null };
  }
  const certificate = await deps.agents.certificate(url.origin);
  const certificateKey = certificatePublicKey(new X509Certificate(certificate));
  if (certificateKey === undefined) {
    throw new FlowError(
      'host_key_mismatch',
      `the agent at ${url.origin} presents a certificate without an Ed25519 key`,
    );
  }
  if (expected !== undefined && !isExpectedKey(expected, certificateKey)) {
    throw mismatch('presents a TLS certificate for key', certificateKey, `the expected ${expected.fingerprint}`);
  }
  const info = await deps.agents.info({ url: url.origin, certificate });
  if (info.publicKey !== certificateKey) {
    throw mismatch(
      'answers /v1/info with key',
      info.publicKey,
      `its TLS certificate's ${keyFingerprint(certificateKey)}`,
    );
  }
  const checked = checkCertificate(certificate, info.publicKey);
  if (!checked.ok) {
    throw new FlowError('host_key_mismatch', `the agent at ${url.origin} presents a certificate that ${checked.error}`);
  }
  return { info, certificate };
}

// TLS to the test agents as the controller does it: the agent's own certificate is the only CA, and the controller's
// certificate is presented (agents close connections without a trusted one). Registered by origin when an agent
// starts, so that helpers given only a URL (post, proxies) reach it.
import type { RequestOptions } from 'node:https';
import { createPinnedDispatcher } from '@hostfiles/controller';
import { tlsIdentity, type SigningKey } from '@hostfiles/shared';

interface Trust {
  readonly dispatcher: ReturnType<typeof createPinnedDispatcher>;
  readonly options: RequestOptions;
}

const trusted = new Map<string, Trust>();

/** From now on, `url`'s origin is reached trusting `certificate` alone, presenting `clientKey`'s certificate. */
export function trustAgent(url: string, certificate: string, clientKey: SigningKey): void {
  const identity = tlsIdentity(clientKey);
  trusted.set(new URL(url).origin, {
    dispatcher: createPinnedDispatcher(certificate, identity),
    options: { ...identity, ca: certificate, checkServerIdentity: () => undefined, minVersion: 'TLSv1.3' },
  });
}

type FetchDispatcher = NonNullable<RequestInit['dispatcher']>;

/** fetch, over the pinned connection when `url` is a registered agent's. */
export function fetchAgent(url: string, init: RequestInit = {}): Promise<Response> {
  const trust = trusted.get(new URL(url).origin);
  if (trust === undefined) return fetch(url, init);
  return fetch(url, { ...init, dispatcher: trust.dispatcher as unknown as FetchDispatcher });
}

/** node:https options for a registered agent's URL (for requests whose every header a test sets itself). */
export function agentRequestOptions(url: string): RequestOptions {
  return trusted.get(new URL(url).origin)?.options ?? {};
}

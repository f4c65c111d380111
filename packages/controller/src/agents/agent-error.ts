// The one error a call to an agent ends in, whatever went wrong, with what the flows need to decide.
import type { CommandKind } from '@hostfiles/shared';
import { hasBrand } from '../brand.js';

export const AGENT_CALL_FAILURES = [
  /** no connection, reset, DNS, or a peer that is not the pinned agent (details.pinFailure): nothing was delivered */
  'unreachable',
  /** no answer within the timeout */
  'timeout',
  /** the agent answered an error (its code in `agentCode`) */
  'refused',
  /** a 200 whose signature, shape, requestId or host is wrong: never trusted */
  'bad_answer',
] as const;
export type AgentCallFailure = (typeof AGENT_CALL_FAILURES)[number];

const AGENT_CALL_ERROR: unique symbol = Symbol.for('hostfiles.AgentCallError');

export class AgentCallError extends Error {
  override readonly name = 'AgentCallError';
  /** see brand.ts: an AgentCallError is told apart by it, not by `instanceof` */
  readonly [AGENT_CALL_ERROR] = true;
  constructor(
    readonly failure: AgentCallFailure,
    readonly host: string,
    readonly kind: CommandKind | 'info',
    message: string,
    readonly details: {
      readonly status?: number;
      readonly agentCode?: string;
      readonly attempts?: number;
      /**
       * For a refusal: it came over TLS to the host's pinned certificate, so it is the agent's own. An error answer
       * is not signed: over plain HTTP (or an unpinned https:// URL) anyone on the path could have made it up.
       */
      readonly pinned?: boolean;
      /** the peer failed the TLS pin (its certificate is not the host's pinned one): the TLS error's code */
      readonly pinFailure?: string;
      /**
       * unreachable: the system's error codes of the connection's failure (ECONNREFUSED, ECONNRESET, …), when it had
       * any: one per address tried (a name of several addresses fails with each address's own), in the order tried.
       */
      readonly errnos?: readonly string[];
    } = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export const isAgentCallError = (error: unknown): error is AgentCallError => hasBrand(error, AGENT_CALL_ERROR);

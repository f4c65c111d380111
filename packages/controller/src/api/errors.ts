// The API's one error: a closed set of codes with a complete status table, and the mapping of every other error.
import type { RequestErrorCode } from '@hostfiles/shared';
import { isAgentCallError } from '../agents/index.js';
import { isFlowError, type FlowError } from '../flows/index.js';
import { isStoreError, type StoreErrorCode } from '../store/index.js';

export const API_ERROR_CODES = [
  'unauthorized',
  'bad_request',
  'not_found',
  'conflict',
  'busy',
  'host_key_changed',
  'host_key_mismatch',
  'too_large',
  'agent_unreachable',
  'agent_refused',
  'internal',
] as const;
export type ApiErrorCode = (typeof API_ERROR_CODES)[number];

export type ApiErrorStatus = 400 | 401 | 404 | 409 | 413 | 500 | 502;

/** A code missing here is a type error. */
export const API_ERROR_STATUS: Readonly<Record<ApiErrorCode, ApiErrorStatus>> = {
  unauthorized: 401,
  bad_request: 400,
  not_found: 404,
  conflict: 409,
  busy: 409,
  host_key_changed: 409,
  host_key_mismatch: 409,
  too_large: 413,
  agent_unreachable: 502,
  agent_refused: 502,
  internal: 500,
};

/** One problem with a request body: where (a dotted path, '' for the whole body) and what. */
export interface Problem {
  readonly path: string;
  readonly message: string;
}

/** Every error answer's body. */
export interface ErrorBody {
  readonly error: { readonly code: ApiErrorCode; readonly message: string; readonly problems?: readonly Problem[] };
}

export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly status: ApiErrorStatus;
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    readonly problems?: readonly Problem[],
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.status = API_ERROR_STATUS[code];
  }
}

export const isApiError = (error: unknown): error is ApiError => error instanceof ApiError;

const FLOW_CODES: Readonly<Record<FlowError['code'], ApiErrorCode>> = {
  not_found: 'not_found',
  bad_input: 'bad_request',
  conflict: 'conflict',
  busy: 'busy',
  unavailable: 'agent_unreachable',
  host_key_changed: 'host_key_changed',
  host_key_mismatch: 'host_key_mismatch',
};

// 'io' and 'schema_too_new' are the controller's own trouble: they stay internal.
const STORE_CODES: Readonly<Record<StoreErrorCode, ApiErrorCode>> = {
  not_found: 'not_found',
  conflict: 'conflict',
  constraint: 'conflict',
  io: 'internal',
  schema_too_new: 'internal',
};

/**
 * The agents' refusals that are the API caller's error, not the agent's or the controller's: a path outside the
 * agent's roots. Every other refusal (a key the agent does not trust, a replay) stays `agent_refused`.
 */
const CALLERS_AGENT_CODES: readonly string[] = ['outside_root'] satisfies readonly RequestErrorCode[];

export const isCallersAgentCode = (code: string | undefined): boolean =>
  code !== undefined && CALLERS_AGENT_CODES.includes(code);

/** Any error as an ApiError; an 'internal' one carries a generic message, the original only as `cause`. */
export function toApiError(error: unknown): ApiError {
  if (isApiError(error)) return error;
  if (isFlowError(error)) return new ApiError(FLOW_CODES[error.code], error.message, undefined, { cause: error });
  if (isStoreError(error) && STORE_CODES[error.code] !== 'internal') {
    return new ApiError(STORE_CODES[error.code], storeMessage(error.code), undefined, { cause: error });
  }
  if (isAgentCallError(error)) {
    if (error.failure === 'refused' && isCallersAgentCode(error.details.agentCode)) {
      return new ApiError('bad_request', `host ${error.host} refused the request: ${error.message}`, undefined, {
        cause: error,
      });
    }
    const down = error.failure === 'unreachable' || error.failure === 'timeout';
    return new ApiError(
      down ? 'agent_unreachable' : 'agent_refused',
      `agent ${error.host}: ${error.failure}: ${error.message}`,
      undefined,
      { cause: error },
    );
  }
  return new ApiError('internal', 'internal error', undefined, { cause: error });
}

// The store's messages name tables and SQL constraints: the caller is told what it means instead.
function storeMessage(code: StoreErrorCode): string {
  switch (code) {
    case 'conflict':
      return 'a record with that name or key exists already';
    case 'constraint':
      return 'other records still refer to this one';
    case 'not_found':
      return 'no such record';
    case 'io':
    case 'schema_too_new':
      return 'internal error';
  }
}

// The closed set of error codes of protocol v1 and the HTTP status of each.

/** Codes a whole request can be refused with, in the order the agent checks them. */
export const REQUEST_ERROR_CODES = [
  'too_large',
  'bad_request',
  'unknown_key',
  'bad_signature',
  'wrong_host',
  'expired',
  'replayed',
  'outside_root',
  'not_found',
  'unavailable',
  /** the agent holds as many request bodies as it takes at once (its budget of bytes in flight): try again soon */
  'overloaded',
  'internal',
] as const;
export type RequestErrorCode = (typeof REQUEST_ERROR_CODES)[number];

/** A `Record` so that a code without a status is a type error. */
export const HTTP_STATUS: Readonly<Record<RequestErrorCode, 400 | 401 | 403 | 404 | 409 | 413 | 500 | 503>> = {
  too_large: 413,
  bad_request: 400,
  unknown_key: 401,
  bad_signature: 401,
  wrong_host: 403,
  expired: 401,
  replayed: 409,
  outside_root: 403,
  not_found: 404,
  unavailable: 503,
  overloaded: 503,
  internal: 500,
};

/**
 * Codes one op of a batch can fail with; the batch itself still answers 200.
 * - `busy`: a lock is held on the target or a file below it (a running swtpm's `.lock`, a QEMU holding NVRAM open), or
 *   a swtpm has the file right below the TPM state root open (its file:// backend, which locks nothing).
 * - `exists`: the op required the target absent (`expect: 'absent'`) and something is there.
 * - `changed`: the op required the target's digest (`expect: <sha256>`) and it differs.
 * - `not_directory` / `not_regular_file`: the target is of the other kind than the op needs.
 * - `expired`: the command's life, with the agent's clock skew, ended before this op's first change (its batch ran
 *   that long): it changed nothing, and no op of that command changes anything from then on.
 */
export const OP_ERROR_CODES = [
  'symlink',
  'not_regular_file',
  'not_directory',
  'not_found',
  'busy',
  'exists',
  'changed',
  'expired',
  'io_error',
] as const;
export type OpErrorCode = (typeof OP_ERROR_CODES)[number];

export interface ErrorBody {
  readonly error: { readonly code: RequestErrorCode; readonly message: string };
}

export interface ProtocolError {
  readonly code: RequestErrorCode;
  readonly message: string;
}

export const protocolError = (code: RequestErrorCode, message: string): ProtocolError => ({ code, message });

export const isRequestErrorCode = (value: unknown): value is RequestErrorCode =>
  typeof value === 'string' && (REQUEST_ERROR_CODES as readonly string[]).includes(value);

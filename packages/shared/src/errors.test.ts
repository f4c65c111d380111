// The error codes and their HTTP statuses, against the table in DESIGN.md.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HTTP_STATUS, REQUEST_ERROR_CODES, isRequestErrorCode, protocolError } from './errors.js';

describe('error codes', () => {
  it('lists the agent checks in order, with the statuses of the design', () => {
    assert.deepStrictEqual(REQUEST_ERROR_CODES.slice(0, 8), [
      'too_large',
      'bad_request',
      'unknown_key',
      'bad_signature',
      'wrong_host',
      'expired',
      'replayed',
      'outside_root',
    ]);
    assert.deepStrictEqual(
      { ...HTTP_STATUS },
      {
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
      },
    );
  });

  it('has a status for every code and a code for every status', () => {
    assert.deepStrictEqual(Object.keys(HTTP_STATUS).sort(), [...REQUEST_ERROR_CODES].sort());
  });

  it('recognizes exactly the codes', () => {
    for (const code of REQUEST_ERROR_CODES) assert.equal(isRequestErrorCode(code), true);
    for (const value of ['', 'BAD_REQUEST', 'symlink', 'toString', '__proto__', 400, null, undefined]) {
      assert.equal(isRequestErrorCode(value), false, String(value));
    }
  });

  it('builds a protocol error', () => {
    assert.deepStrictEqual(protocolError('expired', 'too old'), { code: 'expired', message: 'too old' });
  });
});

// Bearer-token check: constant time whatever the length of what the caller sent.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { ApiError } from './errors.js';

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/**
 * Refuses a request without `Authorization: Bearer <token>`; the token is compared as SHA-256 digests. A function is
 * asked per request: serve reloads its token file on SIGHUP.
 */
export function bearerAuth(token: string | (() => string)): MiddlewareHandler {
  const current = typeof token === 'string' ? () => token : token;
  if (current() === '') throw new RangeError('the API token must not be empty');
  return async (c, next) => {
    const expected = digest(current());
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer +(\S+) *$/i.exec(header);
    // Equal-length buffers always (two digests), so neither the comparison nor its length says anything.
    if (match?.[1] === undefined || !timingSafeEqual(digest(match[1]), expected)) {
      c.header('www-authenticate', 'Bearer realm="hostfiles"');
      throw new ApiError('unauthorized', 'a valid bearer token is required');
    }
    await next();
  };
}

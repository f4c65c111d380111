// Request bodies: a size cap checked before reading and while reading, strict JSON, then a zod schema.
import { parseStrictJson, readCapped } from '@hostfiles/shared';
import type { Context, MiddlewareHandler } from 'hono';
import type { z } from 'zod';
import { ApiError, type Problem } from './errors.js';

/** Refuses a declared Content-Length over the limit before a byte of the body is read. */
export function declaredSizeLimit(limit: number): MiddlewareHandler {
  return async (c, next) => {
    const declared = c.req.header('content-length');
    if (declared !== undefined && !(/^\d+$/.test(declared) && Number(declared) <= limit)) {
      throw tooLarge(limit);
    }
    await next();
  };
}

/** Reads the body (at most `limit` bytes, whatever was declared), parses it and checks it against `schema`. */
export async function readBody<S extends z.ZodType>(c: Context, schema: S, limit: number): Promise<z.infer<S>> {
  const bytes = await readCapped(c.req.raw.body, limit, () => tooLarge(limit));
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (error) {
    throw new ApiError('bad_request', 'the body is not UTF-8', undefined, { cause: error });
  }
  const json = parseStrictJson(text);
  if (!json.ok) throw new ApiError('bad_request', 'the body is not JSON', [{ path: '', message: json.error }]);
  const parsed = schema.safeParse(json.value);
  if (!parsed.success) {
    const problems: Problem[] = parsed.error.issues.map((issue) => ({
      path: issue.path.map(String).join('.'),
      message: issue.message,
    }));
    throw new ApiError('bad_request', 'the body is not valid', problems);
  }
  return parsed.data;
}

const tooLarge = (limit: number): ApiError => new ApiError('too_large', `the body is over the limit of ${limit} bytes`);

// Request bodies and queries: a size cap checked before reading and while reading, strict JSON, then a zod schema.
import { parseStrictJson, readCapped } from '@hostfiles/shared';
import type { Context, MiddlewareHandler } from 'hono';
import type { z } from 'zod';
import { ApiError, type Problem } from './errors.js';

/**
 * What a schema answers for parsed JSON: JSON holds no `undefined`, and zod adds no key for an absent optional
 * field, so `field?: X | undefined` is `field?: X` (what the flows take under exactOptionalPropertyTypes).
 */
export type Parsed<T> = T extends readonly unknown[]
  ? { [K in keyof T]: Parsed<T[K]> }
  : T extends object
    ? { [K in keyof T]: Parsed<Exclude<T[K], undefined>> }
    : T;

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

export interface ReadBodyOptions {
  /** an empty body stands for `{}` (a body whose every field is optional) */
  readonly optional?: boolean;
}

/** Reads the body (at most `limit` bytes, whatever was declared), parses it and checks it against `schema`. */
export async function readBody<S extends z.ZodType>(
  c: Context,
  schema: S,
  limit: number,
  options: ReadBodyOptions = {},
): Promise<Parsed<z.output<S>>> {
  const bytes = await readCapped(c.req.raw.body, limit, () => tooLarge(limit));
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (error) {
    throw new ApiError('bad_request', 'the body is not UTF-8', undefined, { cause: error });
  }
  if (options.optional === true && bytes.length === 0) text = '{}';
  const json = parseStrictJson(text);
  if (!json.ok) throw new ApiError('bad_request', 'the body is not JSON', [{ path: '', message: json.error }]);
  return check(schema, json.value, 'the body is not valid');
}

/** Checks the query string (each name once) against `schema`. */
export function readQuery<S extends z.ZodType>(c: Context, schema: S): Parsed<z.output<S>> {
  const repeated = Object.entries(c.req.queries()).find(([, values]) => values.length > 1);
  if (repeated !== undefined) {
    throw new ApiError('bad_request', 'the query is not valid', [
      { path: repeated[0], message: 'given more than once' },
    ]);
  }
  return check(schema, c.req.query(), 'the query is not valid');
}

function check<S extends z.ZodType>(schema: S, value: unknown, what: string): Parsed<z.output<S>> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const problems: Problem[] = parsed.error.issues.map((issue) => ({
      path: issue.path.map(String).join('.'),
      message: issue.message,
    }));
    throw new ApiError('bad_request', what, problems);
  }
  // See Parsed: only the type changes.
  return parsed.data as Parsed<z.output<S>>;
}

const tooLarge = (limit: number): ApiError => new ApiError('too_large', `the body is over the limit of ${limit} bytes`);

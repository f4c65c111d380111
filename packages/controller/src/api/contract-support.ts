// The contract every answer of the API is held to: the published OpenAPI document, compiled strictly (ajv, draft
// 2020-12, formats) with its `$ref`s resolved; and what the answers so far covered of it.
import assert from 'node:assert/strict';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import formats from 'ajv-formats';
import { API_ERROR_STATUS, type ApiErrorCode } from './errors.js';
import { OPENAPI_DOCUMENT } from './openapi.js';

type Json = Readonly<Record<string, unknown>>;
interface Operation {
  readonly responses: Readonly<Record<string, { readonly content?: Json }>>;
}

const ROOT = 'urn:hostfiles:openapi';
/** The document's `#/components/schemas/X` as `${ROOT}#/$defs/X`: ajv then resolves every `$ref` in one root. */
const rebased = (schema: unknown): Json =>
  JSON.parse(JSON.stringify(schema).replaceAll('"#/components/schemas/', `"${ROOT}#/$defs/`)) as Json;

/** What one route answered, held against the document; `covered` tells what the answers so far exercised. */
export interface Contract {
  /** Fails unless the document has the route, the status for it, and a schema the body is valid against. */
  check(method: string, url: string, status: number, body: unknown): void;
  /** `METHOD /template` → the statuses answered */
  readonly covered: ReadonlyMap<string, ReadonlySet<number>>;
  /** every documented route with the statuses it documents */
  readonly documented: ReadonlyMap<string, readonly number[]>;
}

export function createContract(document: Json = OPENAPI_DOCUMENT): Contract {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  formats.default(ajv);
  // zod writes `format: base64` beside the `contentEncoding` and `pattern` that say the same; ajv-formats lacks it.
  ajv.addFormat('base64', /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/);
  const components = (document['components'] as { schemas: Json }).schemas;
  ajv.addSchema({ $id: ROOT, $defs: rebased(components) });
  // Every component compiles strictly, whether or not a test reaches it.
  for (const id of Object.keys(components)) ajv.getSchema(`${ROOT}#/$defs/${id}`);

  const routes = Object.entries(document['paths'] as Record<string, Record<string, Operation>>).flatMap(
    ([template, methods]) =>
      Object.entries(methods).map(([method, operation]) => ({
        key: `${method.toUpperCase()} ${template}`,
        method: method.toUpperCase(),
        pattern: new RegExp(`^${template.replace(/\{\w+\}/g, '[^/]+').replaceAll('.', '\\.')}$`),
        validators: new Map(
          Object.entries(operation.responses).map(([status, response]) => [
            Number(status),
            compileResponse(ajv, response.content),
          ]),
        ),
      })),
  );
  const covered = new Map<string, Set<number>>();
  return {
    covered,
    documented: new Map(routes.map((route) => [route.key, [...route.validators.keys()]])),
    check(method, url, status, body) {
      const path = new URL(url, 'http://api').pathname;
      const route = routes.find((r) => r.method === method && r.pattern.test(path));
      assert.ok(route !== undefined, `${method} ${path} is not in the document`);
      const validate = route.validators.get(status);
      assert.ok(validate !== undefined, `${route.key} answered ${status}, which the document does not list for it`);
      assert.ok(validate(body), `${route.key} ${status}: ${ajv.errorsText(validate.errors)}: ${JSON.stringify(body)}`);
      const code = (body as { error?: { code?: ApiErrorCode } }).error?.code;
      if (status >= 400 && code !== undefined) assert.equal(API_ERROR_STATUS[code], status, `${code} is not ${status}`);
      covered.set(route.key, (covered.get(route.key) ?? new Set()).add(status));
    },
  };
}

function compileResponse(ajv: Ajv2020, content: Json | undefined): ValidateFunction {
  const schema = (content?.['application/json'] as { schema?: Json } | undefined)?.schema;
  assert.ok(schema !== undefined, 'every answer is JSON with a schema');
  return ajv.compile(rebased(schema));
}

/** Statuses every route behind the token documents: not what a route is about. */
const COMMON_ERRORS = new Set([401, 413, 500]);

/**
 * The routes not yet answered with their success status, or with an error status of their own (one of those they
 * document beside 401, 413 and 500; any error when they document no other).
 */
export function uncovered(contract: Contract): string[] {
  const missing: string[] = [];
  for (const [key, statuses] of contract.documented) {
    const seen = contract.covered.get(key) ?? new Set<number>();
    if (!statuses.some((s) => s < 300 && seen.has(s))) missing.push(`${key}: its success`);
    const errors = statuses.filter((s) => s >= 400);
    const own = errors.filter((s) => !COMMON_ERRORS.has(s));
    const wanted = own.length > 0 ? own : errors;
    if (wanted.length > 0 && !wanted.some((s) => seen.has(s))) missing.push(`${key}: one of ${wanted.join(', ')}`);
  }
  return missing;
}

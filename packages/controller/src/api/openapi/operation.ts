// One operation of the document from a short spec: its answers (the success, its own errors, and those every route
// behind the token has), parameters and request body, each schema a `$ref` to a component.
import type { z } from 'zod';
import { destroyVmQuery } from '../schemas.js';
import { ref, type Schema } from './components.js';
import { errorBody } from './records.js';

/** The error statuses a route may document beside the ones every authenticated route has. */
type RouteErrorStatus = 400 | 404 | 409 | 502;

interface OperationSpec {
  readonly operationId: string;
  readonly summary: string;
  readonly description?: string;
  readonly ok: { readonly status: 200 | 201; readonly description: string; readonly schema: Schema };
  readonly errors?: Readonly<Partial<Record<RouteErrorStatus, string>>>;
  readonly body?: z.ZodType;
  /** a body whose every field is optional may be left out */
  readonly bodyOptional?: boolean;
  readonly parameters?: readonly Schema[];
}

export const json = (schema: Schema): Schema => ({ content: { 'application/json': { schema } } });
const failure = (description: string): Schema => ({ description, ...json(ref(errorBody)) });

/** The error answers of every route behind the token. */
const COMMON_ERRORS = {
  '401': failure('no or a wrong bearer token (unauthorized)'),
  '413': failure('the body, declared or read, is over the limit (too_large)'),
  '500': failure('internal error: the message carries an id to find the log line by (internal)'),
};

export function operation(spec: OperationSpec): Schema {
  const errors = Object.fromEntries(
    Object.entries(spec.errors ?? {}).map(([status, description]) => [status, failure(description)]),
  );
  return {
    operationId: spec.operationId,
    summary: spec.summary,
    ...(spec.description === undefined ? {} : { description: spec.description }),
    ...(spec.parameters === undefined ? {} : { parameters: spec.parameters }),
    ...(spec.body === undefined
      ? {}
      : { requestBody: { required: spec.bodyOptional !== true, ...json(ref(spec.body)) } }),
    responses: {
      [String(spec.ok.status)]: { description: spec.ok.description, ...json(spec.ok.schema) },
      ...errors,
      ...COMMON_ERRORS,
    },
  };
}

const pathParam = (name: string, description: string): Schema => ({
  name,
  in: 'path',
  required: true,
  description,
  schema: { type: 'string' },
});
export const VM = pathParam('vm', "the VM's name or uuid");
export const HOST = pathParam('host', "the host's name or uuid");
export const FORCE = {
  name: 'force',
  in: 'query',
  required: false,
  description: '`true`: go ahead although the VM runs; the deletion of its state in use waits in the outbox',
  schema: { type: 'string', enum: destroyVmQuery.shape.force.unwrap().options },
};

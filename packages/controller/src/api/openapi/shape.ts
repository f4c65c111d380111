// The building blocks of the response schemas, and `of<T>()`: a schema whose shape is not exactly T's (a field
// missing, one more, another type, optional where T requires it) is a compile error, so a report type that changes
// cannot leave the published document behind.
import { FILE_TYPES, STATE_KINDS, UUID_PATTERN } from '@hostfiles/shared';
import { z } from 'zod';

/** Deep-mutable, `?: X` without `| undefined`, intersections flattened: the shape JSON carries. */
type Plain<T> = T extends readonly (infer U)[]
  ? Plain<U>[]
  : T extends object
    ? { -readonly [K in keyof T]: Plain<Exclude<T[K], undefined>> }
    : T;

/**
 * Identity, not mutual assignability: an optional field one side lacks makes them differ. G only makes TypeScript
 * compare the two deferred conditionals by their types, which it does by identity.
 */
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters
type Same<A, B> = (<G>() => G extends Plain<A> ? 1 : 2) extends <G>() => G extends Plain<B> ? 1 : 2 ? true : false;

/** `of<MoveReport>()(schema)`: answers `schema`; a type error unless it describes exactly a MoveReport. */
export const of =
  <T>() =>
  <S extends z.ZodType>(
    schema: S & (Same<T, z.output<S>> extends true ? unknown : { readonly 'the schema is not of the type': T }),
  ): S =>
    schema;

/**
 * The metadata of the API's schemas (component ids, descriptions, formats): a registry of its own, not zod's global
 * one, filled only as the schemas are defined. components.ts turns it into `components.schemas`.
 */
export const SCHEMA_META = z.registry<z.GlobalMeta>();

/** `schema`, with metadata in the document (a description, a format). A schema has one: never give a shared one more. */
export function meta<S extends z.ZodType>(schema: S, data: z.GlobalMeta): S {
  // Adding again would replace, silently, what every other use of a shared schema shows.
  if (SCHEMA_META.has(schema)) throw new Error(`a schema has metadata already: ${JSON.stringify(data)}`);
  SCHEMA_META.add(schema, data);
  return schema;
}

/** `schema` as `#/components/schemas/<id>`: every use of it in another schema becomes a `$ref`. */
export const component = <S extends z.ZodType>(id: string, schema: S, description?: string): S =>
  meta(schema, { id, ...(description === undefined ? {} : { description }) });

/** Any uuid in lowercase hex: libvirt's domain uuids need not be v4, and the outbox uses the nil uuid. */
export const uuidWith = (description?: string): z.ZodString =>
  meta(z.string().regex(UUID_PATTERN), {
    format: 'uuid',
    ...(description === undefined ? {} : { description }),
  });
export const uuid = uuidWith();
export const time = meta(z.int().nonnegative(), { description: 'milliseconds since the Unix epoch' });
export const countWith = (description: string): z.ZodInt => meta(z.int().nonnegative(), { description });
export const count = z.int().nonnegative();
export const sha256 = meta(z.string().regex(/^[0-9a-f]{64}$/), {
  description: "lowercase hex: a file's sha256, or a directory's state digest",
});
export const fileType = z.enum(FILE_TYPES);
export const stateKind = z.enum(STATE_KINDS);
export const path = z.string().min(1);
export const size = meta(z.int().nonnegative(), { description: "a file's size, or the sum of a directory's files" });

// Protocol v1: the shapes of envelopes, commands and answers. Every object is strict: unknown fields are refused.
import { z } from 'zod';
import { OP_ERROR_CODES } from '../errors.js';

export const FILE_TYPES = ['TpmState', 'NvRam'] as const;
export type FileType = (typeof FILE_TYPES)[number];

export const MAX_OPS = 1000;
export const MAX_PATH_LENGTH = 4096;
/** The longest a command may be valid for: `expiresAt − issuedAt`. */
export const MAX_COMMAND_LIFETIME_MS = 300_000;

const base64 = z.base64();
// Exact byte counts: `.length(88)` alone would also take 65 or 66 bytes, and the last character before the
// padding must leave the unused bits zero, so the same bytes have one spelling (RFC 4648 §3.5).
const signatureBase64 = z.string().regex(/^[A-Za-z0-9+/]{85}[AQgw]==$/, 'base64 of 64 bytes');
const publicKeyBase64 = z.string().regex(/^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/, 'base64 of 32 bytes');
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'lowercase hex of 32 bytes');
const time = z.int().nonnegative();
const fileType = z.enum(FILE_TYPES);
// DESIGN.md: hex is lowercase. One spelling per id, or the replay journal would see two requests.
const LOWERCASE = /^[0-9a-f-]+$/;
const uuid = z.uuid().regex(LOWERCASE, 'lowercase hex');
// Confinement (absolute, normalized, below the root) is check 9, answered `outside_root`: here only the type.
const path = z.string().min(1).max(MAX_PATH_LENGTH);

export const envelopeSchema = z.strictObject({
  keyId: z.string().regex(/^[0-9a-f]{16}$/, 'lowercase hex of 8 bytes'),
  payload: base64.min(1),
  signature: signatureBase64,
});
export type Envelope = z.infer<typeof envelopeSchema>;

export const writeOpSchema = z.strictObject({
  op: z.literal('write'),
  type: fileType,
  path,
  content: base64,
  sha256: sha256Hex,
});
export const deleteOpSchema = z.strictObject({ op: z.literal('delete'), type: fileType, path });
export const applyOpSchema = z.discriminatedUnion('op', [writeOpSchema, deleteOpSchema]);
export type WriteOp = z.infer<typeof writeOpSchema>;
export type DeleteOp = z.infer<typeof deleteOpSchema>;
export type ApplyOp = z.infer<typeof applyOpSchema>;

const commandHeader = {
  hostUuid: uuid,
  requestId: z.uuid({ version: 'v4' }).regex(LOWERCASE, 'lowercase hex'),
  issuedAt: time,
  expiresAt: time,
};

export const applyCommandSchema = z.strictObject({
  kind: z.literal('files.apply'),
  ...commandHeader,
  ops: z.array(applyOpSchema).min(1).max(MAX_OPS),
});
export const fileRefSchema = z.strictObject({ type: fileType, path });
export const readCommandSchema = z.strictObject({
  kind: z.literal('files.read'),
  ...commandHeader,
  files: z.array(fileRefSchema).min(1).max(MAX_OPS),
});
export const listCommandSchema = z.strictObject({
  kind: z.literal('files.list'),
  ...commandHeader,
  types: z
    .array(fileType)
    .min(1)
    .max(FILE_TYPES.length)
    .refine((types) => new Set(types).size === types.length, 'each type once'),
});
export const commandSchema = z.discriminatedUnion('kind', [applyCommandSchema, readCommandSchema, listCommandSchema]);
export type ApplyCommand = z.infer<typeof applyCommandSchema>;
export type ReadCommand = z.infer<typeof readCommandSchema>;
export type ListCommand = z.infer<typeof listCommandSchema>;
export type Command = z.infer<typeof commandSchema>;
export type CommandKind = Command['kind'];
export type FileRef = z.infer<typeof fileRefSchema>;

const opError = z.strictObject({ code: z.enum(OP_ERROR_CODES), message: z.string() });
export type OpError = z.infer<typeof opError>;

export const applyResultSchema = z.strictObject({
  op: z.enum(['write', 'delete']),
  type: fileType,
  path,
  status: z.enum(['written', 'deleted', 'absent', 'failed']),
  error: opError.optional(),
});
export const readResultSchema = z.strictObject({
  op: z.literal('read'),
  type: fileType,
  path,
  status: z.enum(['read', 'failed']),
  content: base64.optional(),
  sha256: sha256Hex.optional(),
  error: opError.optional(),
});
export const listEntrySchema = z.strictObject({
  type: fileType,
  path,
  size: z.int().nonnegative(),
  sha256: sha256Hex,
  mtime: time,
});
export type ApplyResult = z.infer<typeof applyResultSchema>;
export type ReadResult = z.infer<typeof readResultSchema>;
export type ListEntry = z.infer<typeof listEntrySchema>;
export type ResultStatus = ApplyResult['status'] | ReadResult['status'];

const answerHeader = { requestId: uuid, hostUuid: uuid };
export const applyAnswerSchema = z.strictObject({
  ...answerHeader,
  kind: z.literal('files.apply'),
  results: z.array(applyResultSchema),
});
export const readAnswerSchema = z.strictObject({
  ...answerHeader,
  kind: z.literal('files.read'),
  results: z.array(readResultSchema),
});
export const listAnswerSchema = z.strictObject({
  ...answerHeader,
  kind: z.literal('files.list'),
  results: z.array(listEntrySchema),
});
export type ApplyAnswer = z.infer<typeof applyAnswerSchema>;
export type ReadAnswer = z.infer<typeof readAnswerSchema>;
export type ListAnswer = z.infer<typeof listAnswerSchema>;
export type Answer = ApplyAnswer | ReadAnswer | ListAnswer;
export type AnswerFor<K extends CommandKind> = Extract<Answer, { kind: K }>;

export const ANSWER_SCHEMAS = {
  'files.apply': applyAnswerSchema,
  'files.read': readAnswerSchema,
  'files.list': listAnswerSchema,
} as const;

export const infoSchema = z.strictObject({
  hostUuid: uuid,
  version: z.string(),
  publicKey: publicKeyBase64,
  keyId: z.string().regex(/^[0-9a-f]{16}$/),
  startedAt: time,
});
export type AgentInfo = z.infer<typeof infoSchema>;

export const errorBodySchema = z.strictObject({
  error: z.strictObject({ code: z.string(), message: z.string() }),
});

export const ENDPOINTS: Readonly<Record<CommandKind, string>> = {
  'files.apply': '/v1/files/apply',
  'files.read': '/v1/files/read',
  'files.list': '/v1/files/list',
};

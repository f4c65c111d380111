// Protocol v1: the shapes of envelopes, commands and answers. Every object is strict: unknown fields are refused.
import { z } from 'zod';
import { FILE_TYPES } from '../core.js';
import { OP_ERROR_CODES } from '../errors.js';
import { isStrictBase64 } from '../util/base64.js';
import { truncate } from '../util/echo.js';

export type { FileType } from '../core.js';

export const MAX_OPS = 1000;
export const MAX_PATH_LENGTH = 4096;
/** The longest a command may be valid for: `expiresAt − issuedAt`. */
export const MAX_COMMAND_LIFETIME_MS = 300_000;
/** The widest clock skew an agent may be configured to tolerate: a command stays acceptable this long past expiry. */
export const MAX_CLOCK_SKEW_MS = 600_000;
/**
 * The most bytes of one answer a controller reads (its signed envelope, as sent). An agent never makes a larger one:
 * the states of a read answer take at most 160 MiB of its JSON, contents and names together (agent/routes/reads.ts),
 * whose envelope, base64 again, is ~214 MiB; the states refused as not fitting (a path and a sentence each, at most
 * 1,000) have the rest.
 */
export const MAX_ANSWER_BYTES = 256 * 1024 * 1024;
/** The most characters of an op error's message: an agent clips its own (a path in one is the longest part). */
export const MAX_MESSAGE_LENGTH = 1024;
/**
 * `message` within MAX_MESSAGE_LENGTH: its start, and how long it was. An agent clips its messages so; a controller
 * clips an older agent's the same way as it reads them, rather than refusing the whole answer for one long message.
 */
export const clipMessage = (message: string): string =>
  message.length > MAX_MESSAGE_LENGTH ? truncate(message, MAX_MESSAGE_LENGTH - 64) : message;
/**
 * The most names one listing reads from a root, so the most units it answers per root: ten times the units of a host
 * of 500 VMs (5,000 units make an answer of ~3.5 MiB and take seconds to describe), and a bound on what the root's
 * owner can make a listing read, hold and hash — the NvRam root is the QEMU user's, who can make millions of files.
 */
export const MAX_LISTED_NAMES = 5_000;
/**
 * The most bytes one result of an apply, stat or busy answer can take in its envelope: its path and message, each
 * character escaped to at most six bytes of JSON, its other fields (a stat's facts) in 512, all base64 again (4/3).
 */
const MAX_RESULT_BYTES = Math.ceil(((6 * (MAX_PATH_LENGTH + MAX_MESSAGE_LENGTH) + 512) * 4) / 3);
/** An envelope's own fields and an answer's header and roots (two paths, escaped), base64 again, with room. */
const ANSWER_OVERHEAD_BYTES = 128 * 1024;

/**
 * The most bytes of one answer of `kind` a controller reads, for a command of `count` ops or files: an apply, stat or
 * busy answer has one small result each (MAX_RESULT_BYTES), so 1 op's answer is read to ~170 KiB, not 256 MiB. A
 * read's states and a listing's units (up to 10,000 paths) are bounded by MAX_ANSWER_BYTES alone.
 */
export function answerByteCap(kind: CommandKind, count: number): number {
  if (kind === 'files.read' || kind === 'files.list') return MAX_ANSWER_BYTES;
  return Math.min(MAX_ANSWER_BYTES, ANSWER_OVERHEAD_BYTES + count * MAX_RESULT_BYTES);
}

// What z.base64() accepts, checked ~4× faster (isStrictBase64): an agent checks every file's content with it.
const base64 = z.string().refine(isStrictBase64, { message: 'Invalid base64-encoded string' });
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

/**
 * How `content` is encoded inside its base64: absent, the bytes themselves; `gzip`, RFC 1952 (NVRAM compresses
 * ~100×: a 64 MiB AAVMF store travels as a few KiB). `sha256` is always of the decoded bytes.
 */
export const CONTENT_ENCODINGS = ['gzip'] as const;
export type ContentEncoding = (typeof CONTENT_ENCODINGS)[number];
const encoding = z.enum(CONTENT_ENCODINGS).optional();
/** The most entries one directory state may carry (a vTPM state has two or three files). */
export const MAX_ENTRIES = 1000;
/**
 * A precondition on the target of an op: `absent` (nothing may be there), or the sha256 the target must have now
 * (a file's, or a directory's state digest). Unmet, the op fails with `exists` or `changed` and changes nothing.
 */
const expect = z.union([z.literal('absent'), sha256Hex]).optional();
// Relative paths of entries are checked at check 9 (normalized, confined, no temp or lock names): here only the type.
const relativePath = z.string().min(1).max(MAX_PATH_LENGTH);

/** The decoded bytes, when the sender knows them: the receiver inflates into one buffer of exactly that size. */
const decodedSize = z.int().nonnegative().optional();

export const writeOpSchema = z.strictObject({
  op: z.literal('write'),
  type: fileType,
  path,
  content: base64,
  encoding,
  sha256: sha256Hex,
  size: decodedSize,
  expect,
});
/** One regular file of a directory state, at `path` relative to the directory. */
export const entrySchema = z.strictObject({
  path: relativePath,
  content: base64,
  encoding,
  sha256: sha256Hex,
  size: decodedSize,
});
/** Replaces the directory at `path` with exactly these files, whole: a crash leaves the old state or the new one. */
export const writeDirOpSchema = z.strictObject({
  op: z.literal('writeDir'),
  type: fileType,
  path,
  entries: z.array(entrySchema).min(1).max(MAX_ENTRIES),
  expect,
});
export const deleteOpSchema = z.strictObject({ op: z.literal('delete'), type: fileType, path, expect });
export const applyOpSchema = z.discriminatedUnion('op', [writeOpSchema, writeDirOpSchema, deleteOpSchema]);
export type WriteOp = z.infer<typeof writeOpSchema>;
export type WriteDirOp = z.infer<typeof writeDirOpSchema>;
export type Entry = z.infer<typeof entrySchema>;
export type DeleteOp = z.infer<typeof deleteOpSchema>;
export type ApplyOp = z.infer<typeof applyOpSchema>;
export type Expectation = NonNullable<WriteOp['expect']>;

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
const types = z
  .array(fileType)
  .min(1)
  .max(FILE_TYPES.length)
  .refine((list) => new Set(list).size === list.length, 'each type once');
export const listCommandSchema = z.strictObject({ kind: z.literal('files.list'), ...commandHeader, types });
/**
 * What is at these paths now (kind, digest, busy), without the contents: adopt, the removal's busy probe, reconcile.
 * A stat of no path answers only the roots.
 */
export const statCommandSchema = z.strictObject({
  kind: z.literal('files.stat'),
  ...commandHeader,
  files: z.array(fileRefSchema).max(MAX_OPS),
});
/**
 * Whether a lock is held on these states now, and nothing else: the removal's busy probe. A stat would also read
 * every file to digest it (a 64 MiB AAVMF store per VM) for an answer the probe does not use.
 */
export const busyCommandSchema = z.strictObject({
  kind: z.literal('files.busy'),
  ...commandHeader,
  files: z.array(fileRefSchema).min(1).max(MAX_OPS),
});
export const commandSchema = z.discriminatedUnion('kind', [
  applyCommandSchema,
  readCommandSchema,
  listCommandSchema,
  statCommandSchema,
  busyCommandSchema,
]);
export type ApplyCommand = z.infer<typeof applyCommandSchema>;
export type ReadCommand = z.infer<typeof readCommandSchema>;
export type ListCommand = z.infer<typeof listCommandSchema>;
export type StatCommand = z.infer<typeof statCommandSchema>;
export type BusyCommand = z.infer<typeof busyCommandSchema>;
export type Command = z.infer<typeof commandSchema>;
export type CommandKind = Command['kind'];
export type FileRef = z.infer<typeof fileRefSchema>;

const opError = z.strictObject({ code: z.enum(OP_ERROR_CODES), message: z.string().transform(clipMessage) });
export type OpError = z.infer<typeof opError>;

export const applyResultSchema = z.strictObject({
  op: z.enum(['write', 'writeDir', 'delete']),
  type: fileType,
  path,
  status: z.enum(['written', 'deleted', 'absent', 'failed']),
  error: opError.optional(),
});

/** What a state is: one regular file, or a directory of regular files (a vTPM's `<uuid>/` with `tpm2/…`). */
export const STATE_KINDS = ['file', 'dir'] as const;
export type StateKind = (typeof STATE_KINDS)[number];
const size = z.int().nonnegative();

/** One file of a directory read back: path relative to the directory, content as in writes. */
export const readEntrySchema = z.strictObject({
  path: relativePath,
  content: base64,
  encoding,
  sha256: sha256Hex,
  size,
});
export type ReadEntry = z.infer<typeof readEntrySchema>;
const readHeader = { op: z.literal('read'), type: fileType, path };
export const readResultSchema = z.union([
  z.strictObject({
    ...readHeader,
    status: z.literal('read'),
    kind: z.literal('file'),
    content: base64,
    encoding,
    sha256: sha256Hex,
    size,
  }),
  // sha256 and size of a directory: its state digest (see stateDigest) and the sum of its files' sizes.
  z.strictObject({
    ...readHeader,
    status: z.literal('read'),
    kind: z.literal('dir'),
    sha256: sha256Hex,
    size,
    entries: z.array(readEntrySchema).max(MAX_ENTRIES),
  }),
  z.strictObject({ ...readHeader, status: z.literal('failed'), error: opError }),
]);

/** A state found on disk: facts without contents. `busy`: a lock is held on it or on a file below it. */
const unitFacts = {
  kind: z.enum(STATE_KINDS),
  /** a file's size, or the sum of a directory's files */
  size,
  /** a file's sha256, or a directory's state digest */
  sha256: sha256Hex,
  /** the newest modification time of the file, or of any file below the directory */
  mtime: time,
  /** 1 for a file; the regular files below a directory (its lock excluded) */
  files: size,
  busy: z.boolean(),
};
/** `files.list` lists units: each file or directory directly below a root. */
export const listEntrySchema = z.strictObject({ type: fileType, path, ...unitFacts });
export const statResultSchema = z.union([
  z.strictObject({ type: fileType, path, status: z.literal('present'), ...unitFacts }),
  z.strictObject({ type: fileType, path, status: z.literal('absent') }),
  z.strictObject({ type: fileType, path, status: z.literal('failed'), error: opError }),
]);
/** `files.busy`: a state found and whether a lock is held on it or on a file below it. */
export const busyResultSchema = z.union([
  z.strictObject({ type: fileType, path, status: z.literal('present'), kind: z.enum(STATE_KINDS), busy: z.boolean() }),
  z.strictObject({ type: fileType, path, status: z.literal('absent') }),
  z.strictObject({ type: fileType, path, status: z.literal('failed'), error: opError }),
]);
export type ApplyResult = z.infer<typeof applyResultSchema>;
export type ReadResult = z.infer<typeof readResultSchema>;
export type ListEntry = z.infer<typeof listEntrySchema>;
export type StatResult = z.infer<typeof statResultSchema>;
export type BusyResult = z.infer<typeof busyResultSchema>;
export type UnitFacts = Omit<ListEntry, 'type' | 'path'>;
export type ResultStatus = ApplyResult['status'] | ReadResult['status'] | StatResult['status'];

const answerHeader = { requestId: uuid, hostUuid: uuid };
/** The agent's roots, so the controller can find state by libvirt's layout (`<TpmState>/<domain uuid>`, …). */
const roots = z.strictObject({ TpmState: path, NvRam: path });
export const applyAnswerSchema = z.strictObject({
  ...answerHeader,
  kind: z.literal('files.apply'),
  results: z.array(applyResultSchema).max(MAX_OPS),
});
export const readAnswerSchema = z.strictObject({
  ...answerHeader,
  kind: z.literal('files.read'),
  results: z.array(readResultSchema).max(MAX_OPS),
});
export const listAnswerSchema = z.strictObject({
  ...answerHeader,
  kind: z.literal('files.list'),
  roots,
  results: z.array(listEntrySchema).max(FILE_TYPES.length * MAX_LISTED_NAMES),
  /**
   * Present when the listing stopped at one of the agent's bounds (LISTING_BOUNDS): the units listed are right, and
   * others may exist. Absent from a complete listing (and from agents before it).
   */
  truncated: z.literal(true).optional(),
});
export const statAnswerSchema = z.strictObject({
  ...answerHeader,
  kind: z.literal('files.stat'),
  roots,
  results: z.array(statResultSchema).max(MAX_OPS),
});
export const busyAnswerSchema = z.strictObject({
  ...answerHeader,
  kind: z.literal('files.busy'),
  results: z.array(busyResultSchema).max(MAX_OPS),
});
export type ApplyAnswer = z.infer<typeof applyAnswerSchema>;
export type ReadAnswer = z.infer<typeof readAnswerSchema>;
export type ListAnswer = z.infer<typeof listAnswerSchema>;
export type StatAnswer = z.infer<typeof statAnswerSchema>;
export type BusyAnswer = z.infer<typeof busyAnswerSchema>;
export type Answer = ApplyAnswer | ReadAnswer | ListAnswer | StatAnswer | BusyAnswer;
export type AnswerFor<K extends CommandKind> = Extract<Answer, { kind: K }>;
export type Roots = z.infer<typeof roots>;

export const ANSWER_SCHEMAS = {
  'files.apply': applyAnswerSchema,
  'files.read': readAnswerSchema,
  'files.list': listAnswerSchema,
  'files.stat': statAnswerSchema,
  'files.busy': busyAnswerSchema,
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
  'files.stat': '/v1/files/stat',
  'files.busy': '/v1/files/busy',
};

/**
 * A `files.list` request's header: the milliseconds, from when the agent begins the listing, within which it answers
 * (a positive integer, at most MAX_ANSWER_WITHIN_MS). Past them it stops hashing, even in the middle of a file, and
 * answers what it listed, `truncated`. The controller sends a part of its attempt's deadline, so a root its QEMU user
 * filled with big files answers in time instead of timing out at every attempt. Outside the signature: it can only
 * make a listing shorter, and a shorter listing is read as incomplete (DESIGN.md, Bounded listings). An agent before
 * it ignores it.
 */
export const ANSWER_WITHIN_HEADER = 'hostfiles-answer-within-ms';
/** A day: no listing is given longer (the controller's attempts are minutes at most). */
export const MAX_ANSWER_WITHIN_MS = 86_400_000;

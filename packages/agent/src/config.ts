// The agent's configuration file: JSON, validated at once, every problem reported.
import { z } from 'zod';
import {
  DEFAULT_METRICS_HOST,
  err,
  isValidRoot,
  ok,
  parseStrictJson,
  readSmallFile,
  smallFileProblem,
  trustedKeyFromBase64,
  type Result,
  MAX_CLOCK_SKEW_MS,
} from '@hostfiles/shared';
import { crossFieldProblems, type ConfigFields } from './config-rules.js';
import { limitsSchema, resolveLimits } from './limits/server-limits.js';

export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;
export const DEFAULT_MAX_CONTENT_BYTES = 128 * 1024 * 1024;
export const DEFAULT_CLOCK_SKEW_MS = 30_000;

const absolutePath = z.string().refine(isValidRoot, 'an absolute, normalized path other than /');
const principal = z.union([
  z.int().nonnegative(),
  z.string().regex(/^[a-z_][a-z0-9_-]*\$?$/i, 'a user or group name, or a numeric id as a JSON number (0, not "0")'),
]);
const mode = z.string().regex(/^0[0-7]{3}$/, 'an octal mode such as "0600"');

/** Per root, as libvirt lays it out (see RootOwnership); every field optional, with the defaults of the design. */
const rootOwnership = z.strictObject({
  owner: principal.optional(),
  group: principal.optional(),
  fileMode: mode.optional(),
  dirMode: mode.optional(),
  topDirMode: mode.optional(),
});
export type RootOwnershipConfig = z.infer<typeof rootOwnership>;

export const CLIENT_AUTH_MODES = ['required', 'none'] as const;
export type ClientAuth = (typeof CLIENT_AUTH_MODES)[number];

/**
 * Where and how the agent listens. TLS (with its own key's certificate) unless `tls: false`; with TLS, clients must
 * present the certificate of a trusted controller key unless `clientAuth: 'none'`. Plain HTTP carries commands and
 * file contents in clear: only on a loopback address, unless `allowPlainHttp` says the operator means it.
 */
const listenSchema = z.strictObject({
  host: z.string().min(1).default('127.0.0.1'),
  port: z.int().min(0).max(65535),
  tls: z.boolean().default(true),
  clientAuth: z.enum(CLIENT_AUTH_MODES).default('required'),
  allowPlainHttp: z.boolean().default(false),
});

export const DEFAULT_METRICS_PORT = 9464;

/**
 * Where Prometheus scrapes `GET /metrics`: a listener of its own, plain HTTP, apart from `listen` (whose clients must
 * hold a controller key). Absent: no metrics. The metrics name no VM, host or path, but tell how busy the agent is
 * and what it refuses: only on a loopback address unless `allowPlainHttp` says the operator means it.
 */
const metricsSchema = z.strictObject({
  host: z.string().min(1).default(DEFAULT_METRICS_HOST),
  port: z.int().min(0).max(65535).default(DEFAULT_METRICS_PORT),
  allowPlainHttp: z.boolean().default(false),
});

const rootsSchema = z.strictObject({ TpmState: absolutePath, NvRam: absolutePath });

const isTrustedKey = (key: string): boolean => {
  try {
    trustedKeyFromBase64(key);
    return true;
  } catch {
    return false;
  }
};

/** Each field's shape; the rules across fields are `configSchema`'s (see config-rules.ts). */
const configShape = z.strictObject({
  hostUuid: z.uuid().regex(/^[0-9a-f-]+$/, 'lowercase hex, as commands carry it'),
  listen: listenSchema,
  roots: rootsSchema,
  trustedKeys: z
    .array(z.string().refine(isTrustedKey, 'base64 of a 32-byte Ed25519 public key'))
    .min(1, 'at least one trusted controller key'),
  keyFile: absolutePath,
  stateDir: absolutePath,
  maxBodyBytes: z
    .int()
    .min(1024)
    .max(256 * 1024 * 1024)
    .default(DEFAULT_MAX_BODY_BYTES),
  maxContentBytes: z
    .int()
    .min(1024)
    .max(1024 * 1024 * 1024)
    .default(DEFAULT_MAX_CONTENT_BYTES),
  clockSkewMs: z.int().min(0).max(MAX_CLOCK_SKEW_MS).default(DEFAULT_CLOCK_SKEW_MS),
  ownership: z.strictObject({ TpmState: rootOwnership.optional(), NvRam: rootOwnership.optional() }).default({}),
  limits: limitsSchema,
  metrics: metricsSchema.optional(),
});

export const configSchema = configShape.superRefine((config, ctx) => {
  for (const problem of crossFieldProblems(config)) ctx.addIssue({ code: 'custom', ...problem });
});

export type AgentConfig = z.infer<typeof configSchema>;

/** Top-level keys of earlier versions, refused with what replaced them rather than as unknown. */
const REPLACED: Readonly<Record<string, string>> = {
  owner: 'replaced by ownership.TpmState.owner and ownership.NvRam.owner (one owner made NVRAM tss:tss)',
  group: 'replaced by ownership.TpmState.group and ownership.NvRam.group (one group made NVRAM tss:tss)',
};

/**
 * A config checked on its own (no file but itself looked at): every problem, and every field that parsed, for the
 * checks on disk of those fields.
 */
export interface CheckedConfig {
  /** The whole config, when it has no problem. */
  readonly config: AgentConfig | undefined;
  /** Every problem, one a line, each naming its field. */
  readonly problems: readonly string[];
  /** What parsed: the whole config when it has no problem; nothing when the file could not be read as JSON. */
  readonly fields: ConfigFields;
}

/** Reads and validates a config file; the error lists every problem, one a line. */
export function loadConfig(path: string): Result<AgentConfig, string[]> {
  return asResult(checkConfigFile(path));
}

export function parseConfig(json: unknown): Result<AgentConfig, string[]> {
  return asResult(checkConfig(json));
}

const asResult = ({ config, problems }: CheckedConfig): Result<AgentConfig, string[]> =>
  config === undefined ? err([...problems]) : ok(config);

export function checkConfigFile(path: string): CheckedConfig {
  const read = readSmallFile(path);
  if (!read.ok) return unread(`cannot read ${path}: ${smallFileProblem(read)}`);
  const text = read.text;
  // Strict, as commands are: JSON.parse would take the last of a key given twice (two `trustedKeys`, one of them
  // unseen by whoever reads the file) without a word.
  const json = parseStrictJson(text);
  if (!json.ok) return unread(`${path} is not JSON: ${json.error}`);
  return checkConfig(json.value);
}

const unread = (problem: string): CheckedConfig => ({ config: undefined, problems: [problem], fields: {} });

export function checkConfig(json: unknown): CheckedConfig {
  const problems: string[] = [];
  let input = json;
  if (isRecord(json)) {
    for (const [key, replacement] of Object.entries(REPLACED)) {
      if (key in json) problems.push(`${key}: ${replacement}`);
    }
    // Reported above with what replaced them: left out so they are not also reported as unknown keys.
    input = Object.fromEntries(Object.entries(json).filter(([key]) => !(key in REPLACED)));
  }
  const parsed = configShape.safeParse(input);
  if (!parsed.success) {
    problems.push(...parsed.error.issues.map((issue) => `${issue.path.join('.') || '(config)'}: ${issue.message}`));
  }
  // zod runs no rule across fields once a field failed: they run here on what parsed, beside the fields' problems.
  const fields = parsed.success ? parsed.data : configFields(input);
  problems.push(...crossFieldProblems(fields).map(({ path, message }) => `${path.join('.')}: ${message}`));
  const config = parsed.success && problems.length === 0 ? parsed.data : undefined;
  return { config, problems, fields };
}

/** The fields of a config that did not parse whole, each parsed on its own (see ConfigFields). */
function configFields(input: unknown): ConfigFields {
  const fields = acceptedFields(configShape, input);
  const ownership = fieldOf(input, 'ownership');
  return {
    ...fields,
    listen: fields.listen ?? acceptedFields(listenSchema, fieldOf(input, 'listen')),
    roots: fields.roots ?? acceptedFields(rootsSchema, fieldOf(input, 'roots')),
    metrics: fields.metrics ?? acceptedFields(metricsSchema, fieldOf(input, 'metrics')),
    ownership: fields.ownership ?? {
      TpmState: acceptedFields(rootOwnership, fieldOf(ownership, 'TpmState')),
      NvRam: acceptedFields(rootOwnership, fieldOf(ownership, 'NvRam')),
    },
  };
}

/** Each field of `input` that `schema` has and accepts, parsed on its own (its default when left out). */
function acceptedFields<T extends z.ZodObject>(schema: T, input: unknown): Partial<z.output<T>> {
  if (!isRecord(input)) return {};
  const fields: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(schema.shape)) {
    const parsed = z.safeParse(field, input[key]);
    if (parsed.success && parsed.data !== undefined) fields[key] = parsed.data;
  }
  return fields as Partial<z.output<T>>;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const fieldOf = (value: unknown, key: string): unknown => (isRecord(value) ? value[key] : undefined);

/** A complete example, printed by `hostfiles-agent print-config-example`. */
export function exampleConfig(): AgentConfig {
  return {
    hostUuid: '3f0f7bd4-1c55-4b4e-9d1a-6c2c1e0c9a11',
    listen: { host: '0.0.0.0', port: 7441, tls: true, clientAuth: 'required', allowPlainHttp: false },
    roots: { TpmState: '/var/lib/libvirt/swtpm', NvRam: '/var/lib/libvirt/qemu/nvram' },
    trustedKeys: ['<base64 public key printed by `hostfiles init`>'],
    keyFile: '/var/lib/hostfiles-agent/agent.key',
    stateDir: '/var/lib/hostfiles-agent',
    maxBodyBytes: DEFAULT_MAX_BODY_BYTES,
    maxContentBytes: DEFAULT_MAX_CONTENT_BYTES,
    clockSkewMs: DEFAULT_CLOCK_SKEW_MS,
    limits: resolveLimits(DEFAULT_MAX_BODY_BYTES, {}),
    metrics: { host: DEFAULT_METRICS_HOST, port: DEFAULT_METRICS_PORT, allowPlainHttp: false },
    ownership: {
      // swtpm's user on Debian and Ubuntu (`swtpm` on Fedora); `<uuid>/` stays root's, 0711, as libvirt makes it.
      TpmState: { owner: 'tss', group: 'tss', fileMode: '0600', dirMode: '0700', topDirMode: '0711' },
      // QEMU's user (`qemu` on Fedora).
      NvRam: { owner: 'libvirt-qemu', group: 'libvirt-qemu', fileMode: '0600', dirMode: '0700', topDirMode: '0700' },
    },
  };
}

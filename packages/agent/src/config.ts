// The agent's configuration file: JSON, validated at once, every problem reported.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import {
  DEFAULT_METRICS_HOST,
  err,
  isLoopbackHost,
  isValidRoot,
  ok,
  trustedKeyFromBase64,
  type Result,
  MAX_CLOCK_SKEW_MS,
} from '@hostfiles/shared';
import { limitProblems, limitsSchema, resolveLimits } from './limits/server-limits.js';
import { overlaps, within } from './path-overlap.js';

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

const isTrustedKey = (key: string): boolean => {
  try {
    trustedKeyFromBase64(key);
    return true;
  } catch {
    return false;
  }
};

export const configSchema = z
  .strictObject({
    hostUuid: z.uuid().regex(/^[0-9a-f-]+$/, 'lowercase hex, as commands carry it'),
    listen: listenSchema,
    roots: z.strictObject({ TpmState: absolutePath, NvRam: absolutePath }),
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
  })
  .superRefine((config, ctx) => {
    const { listen, metrics } = config;
    if (metrics !== undefined && !metrics.allowPlainHttp && !isLoopbackHost(metrics.host)) {
      ctx.addIssue({
        code: 'custom',
        path: ['metrics', 'host'],
        message:
          `metrics on ${metrics.host} would be open to anyone who can reach it: scrape through a loopback address ` +
          '(a local Prometheus or a proxy with TLS), or set metrics.allowPlainHttp',
      });
    }
    if (!listen.tls && !listen.allowPlainHttp && !isLoopbackHost(listen.host)) {
      ctx.addIssue({
        code: 'custom',
        path: ['listen', 'tls'],
        message:
          `plain HTTP on ${listen.host} would carry commands and file contents in clear: keep tls on, listen on a ` +
          'loopback address, or set listen.allowPlainHttp',
      });
    }
    for (const problem of limitProblems(config.maxBodyBytes, config.limits))
      ctx.addIssue({ code: 'custom', ...problem });
    // Each op is confined to the root of its type: nested roots would let a TpmState op reach NVRAM, or the reverse.
    if (overlaps(config.roots.TpmState, config.roots.NvRam)) {
      ctx.addIssue({ code: 'custom', path: ['roots'], message: 'the two roots must not contain each other' });
    }
    for (const [name, root] of Object.entries(config.roots)) {
      // The replay journal inside a root: a signed delete could remove it, and a replayed command then run again.
      // Containing a root is refused too: the agent's own directory and the states it serves are kept apart.
      if (overlaps(config.stateDir, root)) {
        ctx.addIssue({ code: 'custom', path: ['stateDir'], message: `must not overlap the ${name} root` });
      }
      // Inside a root, a signed read would hand out the agent's private key and a write would replace it.
      if (within(config.keyFile, root)) {
        ctx.addIssue({ code: 'custom', path: ['keyFile'], message: `must not be inside the ${name} root` });
      }
    }
  });

export type AgentConfig = z.infer<typeof configSchema>;

/** Top-level keys of earlier versions, refused with what replaced them rather than as unknown. */
const REPLACED: Readonly<Record<string, string>> = {
  owner: 'replaced by ownership.TpmState.owner and ownership.NvRam.owner (one owner made NVRAM tss:tss)',
  group: 'replaced by ownership.TpmState.group and ownership.NvRam.group (one group made NVRAM tss:tss)',
};

/** Reads and validates a config file; the error lists every problem, one a line. */
export function loadConfig(path: string): Result<AgentConfig, string[]> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    return err([`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`]);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return err([`${path} is not JSON: ${(error as Error).message}`]);
  }
  return parseConfig(json);
}

export function parseConfig(json: unknown): Result<AgentConfig, string[]> {
  const problems: string[] = [];
  let input = json;
  if (typeof json === 'object' && json !== null && !Array.isArray(json)) {
    for (const [key, replacement] of Object.entries(REPLACED)) {
      if (key in json) problems.push(`${key}: ${replacement}`);
    }
    // Reported above with what replaced them: left out so they are not also reported as unknown keys.
    input = Object.fromEntries(Object.entries(json).filter(([key]) => !(key in REPLACED)));
  }
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) {
    problems.push(...parsed.error.issues.map((issue) => `${issue.path.join('.') || '(config)'}: ${issue.message}`));
  }
  return parsed.success && problems.length === 0 ? ok(parsed.data) : err(problems);
}

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

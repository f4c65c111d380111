// The agent's configuration file: JSON, validated at once, every problem reported.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { err, isValidRoot, ok, trustedKeyFromBase64, type Result } from '@hostfiles/shared';

export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;
export const DEFAULT_CLOCK_SKEW_MS = 30_000;
export const MAX_CLOCK_SKEW_MS = 600_000;

const absolutePath = z.string().refine(isValidRoot, 'an absolute, normalized path other than /');
const principal = z.union([z.int().nonnegative(), z.string().regex(/^[a-z_][a-z0-9_-]*\$?$/i, 'a user or group name')]);

export const configSchema = z
  .strictObject({
    hostUuid: z.uuid().regex(/^[0-9a-f-]+$/, 'lowercase hex, as commands carry it'),
    listen: z.strictObject({ host: z.string().min(1).default('127.0.0.1'), port: z.int().min(0).max(65535) }),
    roots: z.strictObject({ TpmState: absolutePath, NvRam: absolutePath }),
    trustedKeys: z
      .array(
        z.string().refine((key) => {
          try {
            trustedKeyFromBase64(key);
            return true;
          } catch {
            return false;
          }
        }, 'base64 of a 32-byte Ed25519 public key'),
      )
      .min(1, 'at least one trusted controller key'),
    keyFile: absolutePath,
    stateDir: absolutePath,
    maxBodyBytes: z
      .int()
      .min(1024)
      .max(256 * 1024 * 1024)
      .default(DEFAULT_MAX_BODY_BYTES),
    clockSkewMs: z.int().min(0).max(MAX_CLOCK_SKEW_MS).default(DEFAULT_CLOCK_SKEW_MS),
    owner: principal.optional(),
    group: principal.optional(),
  })
  .superRefine((config, ctx) => {
    const { TpmState, NvRam } = config.roots;
    const nested = (a: string, b: string): boolean => a === b || a.startsWith(`${b}/`);
    if (nested(TpmState, NvRam) || nested(NvRam, TpmState)) {
      ctx.addIssue({ code: 'custom', path: ['roots'], message: 'the two roots must not contain each other' });
    }
    for (const [name, root] of Object.entries(config.roots)) {
      if (nested(config.stateDir, root) || nested(root, config.stateDir)) {
        ctx.addIssue({ code: 'custom', path: ['stateDir'], message: `must not overlap the ${name} root` });
      }
      // Inside a root, a signed read would hand out the agent's private key and a write would replace it.
      if (nested(config.keyFile, root)) {
        ctx.addIssue({ code: 'custom', path: ['keyFile'], message: `must not be inside the ${name} root` });
      }
    }
  });

export type AgentConfig = z.infer<typeof configSchema>;

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
  const parsed = configSchema.safeParse(json);
  if (!parsed.success) {
    return err(parsed.error.issues.map((issue) => `${issue.path.join('.') || '(config)'}: ${issue.message}`));
  }
  return ok(parsed.data);
}

/** A complete example, printed by `hostfiles-agent print-config-example`. */
export function exampleConfig(): AgentConfig {
  return {
    hostUuid: '3f0f7bd4-1c55-4b4e-9d1a-6c2c1e0c9a11',
    listen: { host: '0.0.0.0', port: 7441 },
    roots: { TpmState: '/var/lib/libvirt/swtpm', NvRam: '/var/lib/libvirt/qemu/nvram' },
    trustedKeys: ['<base64 public key printed by `hostfiles init`>'],
    keyFile: '/var/lib/hostfiles-agent/agent.key',
    stateDir: '/var/lib/hostfiles-agent',
    maxBodyBytes: DEFAULT_MAX_BODY_BYTES,
    clockSkewMs: DEFAULT_CLOCK_SKEW_MS,
    owner: 'tss',
    group: 'tss',
  };
}

/** Resolves a user or group name through /etc/passwd or /etc/group (Node has no getpwnam). */
export function resolvePrincipal(value: string | number | undefined, database: 'passwd' | 'group'): number | undefined {
  if (value === undefined || typeof value === 'number') return value;
  const lines = readFileSync(`/etc/${database}`, 'utf8').split('\n');
  for (const line of lines) {
    const fields = line.split(':');
    if (fields[0] === value && fields[2] !== undefined) return Number(fields[2]);
  }
  throw new RangeError(`no ${database === 'passwd' ? 'user' : 'group'} named ${value} in /etc/${database}`);
}

// The configured ownership of each root, resolved to ids and modes with the design's defaults.
import { err, FILE_TYPES, ok, type FileType, type Result } from '@hostfiles/shared';
import type { AgentConfig, RootOwnershipConfig } from './config.js';
import { DEFAULT_DIR_MODE, DEFAULT_FILE_MODE, type Ownerships, type RootOwnership } from './files/index.js';
import { lookUpWithGetent, resolvePrincipal, type LookUp } from './principals.js';

/** `<uuid>/` below the TpmState root is 0711 (root's, so swtpm can reach its `tpm2/`); NVRAM has no such dirs. */
const DEFAULT_TOP_DIR_MODE: Readonly<Record<FileType, number>> = { TpmState: 0o711, NvRam: 0o700 };

/** Every unknown user or group of both roots, all reported together. */
export function resolveOwnerships(
  config: AgentConfig['ownership'],
  lookUp: LookUp = lookUpWithGetent,
): Result<Ownerships, string[]> {
  const problems: string[] = [];
  const resolved: Partial<Record<FileType, RootOwnership>> = {};
  for (const type of FILE_TYPES) {
    const root = resolveRoot(type, config[type] ?? {}, lookUp);
    if (root.ok) resolved[type] = root.value;
    else problems.push(...root.error);
  }
  const { TpmState, NvRam } = resolved;
  if (problems.length > 0 || TpmState === undefined || NvRam === undefined) return err(problems);
  return ok({ TpmState, NvRam });
}

function resolveRoot(type: FileType, config: RootOwnershipConfig, lookUp: LookUp): Result<RootOwnership, string[]> {
  const uid = resolvePrincipal(config.owner, 'passwd', lookUp);
  const gid = resolvePrincipal(config.group, 'group', lookUp);
  const problems = [
    ...(uid.ok ? [] : [`ownership.${type}.owner: ${uid.error}`]),
    ...(gid.ok ? [] : [`ownership.${type}.group: ${gid.error}`]),
  ];
  if (!uid.ok || !gid.ok) return err(problems);
  return ok({
    ...(uid.value === undefined ? {} : { uid: uid.value }),
    ...(gid.value === undefined ? {} : { gid: gid.value }),
    fileMode: octal(config.fileMode, DEFAULT_FILE_MODE),
    dirMode: octal(config.dirMode, DEFAULT_DIR_MODE),
    topDirMode: octal(config.topDirMode, DEFAULT_TOP_DIR_MODE[type]),
  });
}

const octal = (mode: string | undefined, fallback: number): number =>
  mode === undefined ? fallback : parseInt(mode, 8);

// SIGHUP: the config file read again, and what can change in a running agent taken from it: the trusted controller
// keys. Everything else (listen, roots, stateDir, keyFile, hostUuid, limits, ownership, metrics, ...) is bound to
// sockets, open root handles or the journal at start: a change there is reported as needing a restart, not applied.
import { trustedKeyFromBase64, type TrustedKey } from '@hostfiles/shared';
import { loadConfig, type AgentConfig } from './config.js';

/** The config keys a reload applies. */
export const LIVE_KEYS: readonly (keyof AgentConfig)[] = ['trustedKeys'];

export type ReloadOutcome =
  | {
      readonly ok: true;
      /** keyIds now trusted that were not */
      readonly added: readonly string[];
      /** keyIds no longer trusted */
      readonly removed: readonly string[];
      readonly trusted: number;
      /** config keys that changed in the file but only take effect at the next start */
      readonly needsRestart: readonly string[];
    }
  | { readonly ok: false; readonly problems: readonly string[] };

/**
 * Reads `configPath` again. A config that does not validate changes nothing (the agent keeps serving with what it
 * has). Otherwise `trustedKeys` (shared with the app and the TLS check, which read it per request and per
 * handshake) is replaced in place, and `running` stays the config the rest of the agent was started with.
 */
export function reloadConfig(
  configPath: string,
  running: AgentConfig,
  trustedKeys: Map<string, TrustedKey>,
): ReloadOutcome {
  const loaded = loadConfig(configPath);
  if (!loaded.ok) return { ok: false, problems: loaded.error };
  const next = loaded.value;
  const keys = new Map(next.trustedKeys.map((key) => trustedKeyFromBase64(key)).map((k) => [k.keyId, k]));
  const added = [...keys.keys()].filter((id) => !trustedKeys.has(id));
  const removed = [...trustedKeys.keys()].filter((id) => !keys.has(id));
  trustedKeys.clear();
  for (const [id, key] of keys) trustedKeys.set(id, key);
  const names = new Set([...Object.keys(running), ...Object.keys(next)] as (keyof AgentConfig)[]);
  const needsRestart = [...names]
    .filter((name) => !LIVE_KEYS.includes(name))
    .filter((name) => JSON.stringify(running[name]) !== JSON.stringify(next[name]))
    .sort();
  return { ok: true, added, removed, trusted: keys.size, needsRestart };
}

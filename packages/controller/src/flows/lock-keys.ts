// The keys flows are serialized on (vm-queue.ts). Each is a plain string derived from what the flow touches and from
// nothing else — no process, no time, no counter — so two controllers name the same thing the same way. That is what
// lets the PostgreSQL store carry this lock table across processes: a key becomes a lease row (key, mode, holder,
// expiry, fencing number) held for the flow's life and taken in sorted key order, which is what stands in for the
// in-process claim of all keys at once. Not a session advisory lock: a flow spans many transactions, and a session
// lock wanders with a pooled connection (docs/DESIGN.md, "Serialization: VMs, paths, hosts").
//
//   vm:<vm uuid>                          exclusive: every flow on the VM (its rows, backups, TPM, key binding)
//   host:<host uuid>                      shared by every flow on a state of the host; exclusive for a flow that
//                                         only learns which states it touches from the host itself (reconcile's
//                                         listing, the agent's roots for libvirt's layout)
//   path:<host uuid>:<type>:<path>        exclusive: the state at that path; shared: a state below it is in use
import { posix } from 'node:path';
import type { FileType } from '@hostfiles/shared';
import type { LockKey } from './vm-queue.js';

export const vmKey = (vmUuid: string): LockKey => ({ key: `vm:${vmUuid}`, mode: 'exclusive' });

/** A whole host: for a flow that cannot name the paths it touches before it asks the host. */
export const wholeHost = (hostUuid: string): LockKey => ({ key: `host:${hostUuid}`, mode: 'exclusive' });

/**
 * The state at `path` on a host: exclusive on the path, shared on each directory above it and on the host. A state
 * can lie inside another's path (0.1 recorded `<uuid>/tpm2/tpm2-00.permall`; a write of `<uuid>/` cancels a deletion
 * pending below it): a flow on the inner path holds the outer one shared, so the two never run at once, while states
 * side by side (every VM's below one root) share their parents and go on in parallel. The type is part of the key:
 * an agent refuses roots that overlap, so paths of different types never lie inside one another.
 */
export function stateKeys(hostUuid: string, type: FileType, path: string): LockKey[] {
  const keys: LockKey[] = [
    { key: `host:${hostUuid}`, mode: 'shared' },
    { key: pathKey(hostUuid, type, path), mode: 'exclusive' },
  ];
  for (let dir = posix.dirname(path); ; dir = posix.dirname(dir)) {
    keys.push({ key: pathKey(hostUuid, type, dir), mode: 'shared' });
    if (dir === posix.dirname(dir)) return keys;
  }
}

const pathKey = (hostUuid: string, type: FileType, path: string): string => `path:${hostUuid}:${type}:${path}`;

/** The keys of states as rows name them (recorded states, pending deletions). */
export const keysOfStates = (
  states: readonly { readonly hostUuid: string; readonly type: FileType; readonly path: string }[],
): LockKey[] => states.flatMap((s) => stateKeys(s.hostUuid, s.type, s.path));

/** Whether holding `held` is holding every key of `needed` at least as strongly. */
export function covers(held: readonly LockKey[], needed: readonly LockKey[]): boolean {
  const modes = new Map<string, LockKey['mode']>();
  for (const { key, mode } of held) if (modes.get(key) !== 'exclusive') modes.set(key, mode);
  return needed.every(({ key, mode }) => modes.get(key) === 'exclusive' || modes.get(key) === mode);
}

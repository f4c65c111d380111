// Names of the agent's temp entries. Every one starts with TEMP_PREFIX, which confinePath refuses in requests.
import { randomBytes } from 'node:crypto';
import { TEMP_PREFIX } from '@hostfiles/shared';

export { TEMP_PREFIX };

// NAME_MAX on Linux file systems: a longer temp name would fail an op whose target name is fine.
const NAME_MAX_BYTES = 255;

/**
 * The roles of the named temp entries of a directory replace and a delete; startup recovery reads them back.
 * Random names start with hex right after the prefix, and `new.`, `old.`, `del.` are not hex: no random name
 * can ever be read as one of these, whatever the target is called.
 */
export const ROLES = ['new', 'old', 'del'] as const;
export type Role = (typeof ROLES)[number];

/** Random bytes drawn from the CSPRNG a page at a time: one randomBytes(8) per name cost ~6 µs, ~20 µs under load. */
const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let used = 0;

/** 16 hex digits (8 random bytes): a name no earlier op left and no one guesses. */
export function randomHex(): string {
  if (used + 8 > pool.length) {
    pool = randomBytes(POOL_BYTES);
    used = 0;
  }
  used += 8;
  return pool.toString('hex', used - 8, used);
}

const random = randomHex;

/** A temp file beside a file target; the target's name only helps a human, so it is dropped when too long. */
export function tempNameFor(name: string): string {
  const full = `${TEMP_PREFIX}${random()}-${name}`;
  return Buffer.byteLength(full) <= NAME_MAX_BYTES ? full : `${TEMP_PREFIX}${random()}`;
}

/** A staging tree, or a tree on its way out: nothing but its prefix means anything. */
export const randomTempName = (): string => `${TEMP_PREFIX}${random()}`;

/** `.hostfiles-tmp-<role>.<name>`, or undefined when that would be longer than a name may be. */
export function roleName(role: Role, name: string): string | undefined {
  const full = `${TEMP_PREFIX}${role}.${name}`;
  return Buffer.byteLength(full) <= NAME_MAX_BYTES ? full : undefined;
}

/** The role and target of a named temp entry; undefined for random temp names and for everything else. */
export function parseRoleName(entry: string): { readonly role: Role; readonly target: string } | undefined {
  if (!entry.startsWith(TEMP_PREFIX)) return undefined;
  const rest = entry.slice(TEMP_PREFIX.length);
  const role = ROLES.find((r) => rest.startsWith(`${r}.`));
  if (role === undefined) return undefined;
  const target = rest.slice(role.length + 1);
  // A target is itself never empty, `.`, `..` or a temp name: those are nothing of ours to restore.
  if (target === '' || target === '.' || target === '..' || target.startsWith(TEMP_PREFIX)) return undefined;
  return { role, target };
}

export const isTempName = (name: string): boolean => name.startsWith(TEMP_PREFIX);

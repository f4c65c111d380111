// Names of the temporary files a write renames over its target.
import { randomBytes } from 'node:crypto';
import { TEMP_PREFIX } from '@hostfiles/shared';

// The prefix lives in shared: confinePath refuses request paths that use it.
export { TEMP_PREFIX };

// NAME_MAX on Linux file systems: a longer temp name would fail a write whose target name is fine.
const NAME_MAX_BYTES = 255;

export function tempNameFor(name: string): string {
  const suffix = randomBytes(8).toString('hex');
  const full = `${TEMP_PREFIX}${name}-${suffix}`;
  // The target's name is only there to help a human; the prefix is what cleanup relies on.
  return Buffer.byteLength(full) <= NAME_MAX_BYTES ? full : `${TEMP_PREFIX}${suffix}`;
}

export const isTempName = (name: string): boolean => name.startsWith(TEMP_PREFIX);

// Whether the agent's own files (replay journal, key) could be reached through a root: by their paths as written, and
// again with symbolic links followed, as the kernel would follow them when the agent opens them.
import { readlinkSync, realpathSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { FileType } from '@hostfiles/shared';

/** `a` is `b` or below it; both absolute and normalized. */
export const within = (a: string, b: string): boolean => a === b || a.startsWith(`${b}/`);

/** `a` is, is inside, or contains `b`. */
export const overlaps = (a: string, b: string): boolean => within(a, b) || within(b, a);

/** As the kernel gives up on a path (ELOOP): a chain of links this long leads nowhere the agent could use. */
const MAX_LINK_HOPS = 40;

/**
 * `path` with every symbolic link of it followed: the real path of its deepest existing ancestor, then the components
 * that do not exist yet (the state directory is made at first start). A link whose target does not exist yet is
 * followed all the same: what is made through it lands where it points. Undefined when the path cannot be resolved
 * for another reason (no permission, a loop): the start then fails on it anyway.
 */
export function realPathOf(path: string, hops = 0): string | undefined {
  const missing: string[] = [];
  const under = (real: string | undefined): string | undefined =>
    real === undefined ? undefined : join(real, ...missing.reverse());
  for (let at = path; ; at = dirname(at)) {
    try {
      return under(realpathSync(at));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') return undefined;
      const target = linkTarget(at);
      if (target !== undefined) {
        return hops < MAX_LINK_HOPS ? under(realPathOf(resolve(dirname(at), target), hops + 1)) : undefined;
      }
      if (at === dirname(at)) return undefined;
      missing.push(basename(at));
    }
  }
}

/** What the link at `path` points to; undefined when `path` is not a link. */
function linkTarget(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    // Not a link (EINVAL), or nothing there (ENOENT): either way, nothing to follow.
    return undefined;
  }
}

/** The paths that parsed: a check of one that did not is skipped. */
export interface OwnPaths {
  readonly roots: { readonly [type in FileType]?: string | undefined };
  readonly stateDir?: string | undefined;
  readonly keyFile?: string | undefined;
}

/**
 * The config's rules that the state directory keeps clear of the roots and the key file out of them, checked on real
 * paths: a state directory reached through a link into a root would let a signed delete remove the replay journal
 * (and the agent then run a replayed command), a key file there a signed read hand out the agent's key. The paths as
 * written are checked by the config schema (a pair it refuses is not reported again here); this finds what links
 * hide. (A root with a link on its path is refused on its own, by preflight.)
 */
export function realOverlapProblems({ roots, stateDir, keyFile }: OwnPaths): string[] {
  const problems: string[] = [];
  const realStateDir = stateDir === undefined ? undefined : realPathOf(stateDir);
  const realKeyFile = keyFile === undefined ? undefined : realPathOf(keyFile);
  for (const [name, path] of Object.entries(roots)) {
    const root = path === undefined ? undefined : realPathOf(path);
    if (path === undefined || root === undefined) continue;
    if (
      stateDir !== undefined &&
      realStateDir !== undefined &&
      overlaps(realStateDir, root) &&
      !overlaps(stateDir, path)
    ) {
      problems.push(
        `stateDir: ${stateDir} is ${realStateDir} once its links are followed, which overlaps the ${name} root ` +
          `${root}: a signed delete could remove the replay journal`,
      );
    }
    if (keyFile !== undefined && realKeyFile !== undefined && within(realKeyFile, root) && !within(keyFile, path)) {
      problems.push(
        `keyFile: ${keyFile} is ${realKeyFile} once its links are followed, inside the ${name} root ${root}: ` +
          "a signed read would hand out the agent's key",
      );
    }
  }
  return problems;
}

// Busy without a lock: a swtpm keeping its TPM state in one file (`--tpmstate backend-uri=file://PATH`, what
// Proxmox, UTM and container setups run) takes no lock on it, so /proc/locks never shows it. Measured with swtpm
// 0.7.1: it keeps the file open and mapped for as long as it runs, and locks nothing. Which file a swtpm runs on is
// in its command line, which /proc shows any process (its open fds only to one allowed to ptrace it: the agent's
// unit grants no CAP_SYS_PTRACE, and needs none for this).
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, isAbsolute, normalize } from 'node:path';
import { mapLimit } from '@hostfiles/shared';
import type { Target } from './target.js';

/** The file a look is about: where it is now, and the path it had where a swtpm would name it. */
export interface LookedAt {
  /** its device, inode, owner, group and mode (lstat) */
  readonly stats: {
    readonly dev: bigint;
    readonly ino: bigint;
    readonly uid: bigint;
    readonly gid: bigint;
    readonly mode: bigint;
  };
  /** its absolute path before any move aside: what a swtpm's command line names */
  readonly path: string;
}

/** Whether a running swtpm's state is this file, as one look at the processes found them. */
export type SwtpmStates = (file: LookedAt) => boolean;

/** Looks at the processes now; never throws: a look that can't tell answers true for every file (conservative). */
export type LookAtSwtpms = () => Promise<SwtpmStates>;

/**
 * Whether a running swtpm keeps its state in the unit `components` names, found as `target` (inspect): asked of file
 * units of a root that looks (`swtpms`: the TPM state root) only, since the look reads every process's command line,
 * too dear for every op on the state directories libvirt makes, whose swtpm locks `tpm2/.lock`. `target` may have
 * been moved aside: the path asked about is the unit's own. `look`: another look to ask (one per listing).
 */
export async function swtpmRunsOn(
  root: { readonly path: string; readonly swtpms?: LookAtSwtpms },
  components: readonly string[],
  target: Target,
  look = root.swtpms,
): Promise<boolean> {
  const [name] = components;
  if (look === undefined || components.length !== 1 || name === undefined || target.kind !== 'file') return false;
  return (await look())({ stats: target.stats, path: `${root.path}/${name}` });
}

/** How many processes are looked at at once (each look is two or three calls through the thread pool). */
const AT_ONCE = 16;

/**
 * A swtpm running on a state file: its user, and the file's path and device and inode when the look found it there;
 * `unseen` when its path is relative to a working directory the look may not see (no ptrace access).
 */
interface Running {
  readonly uid: bigint;
  readonly gid: bigint;
  readonly path: string;
  readonly stats?: { readonly dev: bigint; readonly ino: bigint };
  readonly unseen?: true;
}

/**
 * Lists the processes in `proc` (/proc), and collects the state file of each whose command line runs swtpm on one.
 * A file looked at is such a state when that swtpm's user could have opened it for writing (couldOpen: no one else
 * can make the agent refuse ops on a file by naming a process swtpm), and the file has the state's path, or its device and inode (the path as swtpm wrote it may differ in form). A relative
 * path is resolved in swtpm's working directory, which only ptrace access shows: unseen, that swtpm counts as running
 * on every file its user could have opened. A process that ends meanwhile is skipped.
 */
export function swtpmStates(proc = '/proc'): LookAtSwtpms {
  return async () => {
    let found: (Running | undefined)[];
    try {
      const pids = (await readdir(proc)).filter((name) => /^\d+$/.test(name));
      found = await mapLimit(pids, AT_ONCE, async (pid) => {
        const cmdline = await gone(readFile(`${proc}/${pid}/cmdline`));
        const state = cmdline === undefined ? undefined : swtpmFileState(cmdline);
        if (state === undefined) return undefined;
        const owner = await gone(stat(`${proc}/${pid}`, { bigint: true }));
        if (owner === undefined) return undefined;
        const path = isAbsolute(state) ? normalize(state) : `${proc}/${pid}/cwd/${state}`;
        try {
          const stats = await gone(stat(path, { bigint: true }));
          return { uid: owner.uid, gid: owner.gid, path, ...(stats === undefined ? {} : { stats }) };
        } catch (error) {
          if (isAbsolute(state)) throw error;
          return { uid: owner.uid, gid: owner.gid, path, unseen: true };
        }
      });
    } catch {
      // /proc unreadable, out of fds: no proof any file is free.
      return () => true;
    }
    const running = found.filter((swtpm) => swtpm !== undefined);
    if (running.length === 0) return () => false;
    return (file) => {
      const path = normalize(file.path);
      return running.some(
        (swtpm) =>
          couldOpen(swtpm, file.stats) &&
          (swtpm.unseen === true ||
            swtpm.path === path ||
            (swtpm.stats?.dev === file.stats.dev && swtpm.stats.ino === file.stats.ino)),
      );
    };
  };
}

/**
 * Whether the swtpm's user could have opened the file for writing, by its owner, group and mode: root, its owner,
 * its group when the mode lets the group write, anyone when it lets others write. (The process's own group only:
 * /proc shows no one its supplementary groups without reading its status, and a state file is its owner's, 0600.)
 */
function couldOpen(swtpm: Running, file: LookedAt['stats']): boolean {
  if (swtpm.uid === 0n || swtpm.uid === file.uid) return true;
  if ((file.mode & 0o020n) !== 0n && swtpm.gid === file.gid) return true;
  return (file.mode & 0o002n) !== 0n;
}

/**
 * The file a swtpm command line keeps its state in (`--tpmstate backend-uri=file://PATH[,mode=…]`, or `=` joined),
 * or undefined: not swtpm, or a state directory (`dir=`, `backend-uri=dir://`), whose `.lock` swtpm holds.
 */
export function swtpmFileState(cmdline: Buffer): string | undefined {
  const argv = cmdline.toString('utf8').split('\0');
  if (basename(argv[0] ?? '') !== 'swtpm') return undefined;
  for (const [i, arg] of argv.entries()) {
    const value = arg === '--tpmstate' ? argv[i + 1] : arg.startsWith('--tpmstate=') ? arg.slice(11) : undefined;
    const uri = value
      ?.split(',')
      .find((option) => option.startsWith('backend-uri='))
      ?.slice('backend-uri='.length);
    if (uri?.startsWith('file://') === true) return uri.slice('file://'.length);
  }
  return undefined;
}

/** The value, or undefined when what was looked at went away meanwhile (a process ended, a file removed). */
async function gone<T>(look: Promise<T>): Promise<T | undefined> {
  try {
    return await look;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return undefined;
    throw error;
  }
}

// What the benchmark's files sit on, printed above its figures: the same build gives other figures on another file
// system, and one kind of file system here makes them drift from one run to the next.
//
// ext4 without a journal (this project's machines: their root file system) skips every inode deleted in the last
// one to six minutes when it makes a new one (fs/ext4/ialloc.c: find_inode_bit checks recently_deleted only when
// there is no journal), and the benchmark deletes and makes again hundreds of state directories a sample: measured on
// such a machine, three runs back to back gave the baseline 1,461, 681 and 492 writes a second at 1 × 16, its CPU per
// write 1.0–2.5 ms against 0.5 ms on a journaled ext4 of the same disk. A hypervisor's state directories sit on a
// journaled file system, which pays none of it: `scripts/bench-journaled.sh` runs the benchmark on one made for the run.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { basename } from 'node:path';

export interface FileSystem {
  /** as findmnt names it (ext4, xfs, tmpfs, …), or undefined when it could not be told */
  readonly type: string | undefined;
  /** the device or source it is mounted from */
  readonly source: string | undefined;
  /** ext4 only: whether it has a journal; undefined when not ext4 or not known */
  readonly journal: boolean | undefined;
}

const UNKNOWN: FileSystem = { type: undefined, source: undefined, journal: undefined };

/** The file system holding `dir` (findmnt, util-linux), and for ext4 whether it has a journal (sysfs, procfs). */
export function fileSystemOf(dir: string): FileSystem {
  let line: string;
  try {
    line = execFileSync('findmnt', ['--noheadings', '--output', 'FSTYPE,SOURCE', '--target', dir], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return UNKNOWN;
  }
  const [type, source] = line.split(/\s+/);
  if (type === undefined || type === '') return UNKNOWN;
  return { type, source, journal: type === 'ext4' && source !== undefined ? ext4Journal(source) : undefined };
}

/**
 * Whether the ext4 on `source` has a journal: /sys/fs/ext4/DEV/journal_task names its jbd2 thread or says `<none>`
 * (Linux 5.18 on); before that, a journaled one has /proc/fs/jbd2/DEV-8.
 */
function ext4Journal(source: string): boolean | undefined {
  let device: string;
  try {
    device = basename(realpathSync(source)); // /dev/mapper/x is a link to /dev/dm-N, the name sysfs uses
  } catch {
    return undefined;
  }
  try {
    return readFileSync(`/sys/fs/ext4/${device}/journal_task`, 'utf8').trim() !== '<none>';
  } catch {
    return existsSync(`/sys/fs/ext4/${device}`) ? existsSync(`/proc/fs/jbd2/${device}-8`) : undefined;
  }
}

/** One line for the benchmark's header, e.g. `ext4 on /dev/vda, no journal`. */
export function describeFileSystem(fs: FileSystem): string {
  if (fs.type === undefined) return 'a file system findmnt could not name';
  const journal = fs.journal === undefined ? '' : fs.journal ? ', journaled' : ', no journal';
  return `${fs.type} on ${fs.source ?? 'an unknown source'}${journal}`;
}

// The state directories (units) of one root that a busy check walked and found free of every held lock, for a short
// while and only while /proc/locks reads the very same text: a later check of such a unit needs no walk
// (preconditions.ts).
//
// Why that is sound: a unit becomes busy only by a lock on an inode in it. A lock taken anywhere adds a line to
// /proc/locks (its kind, its holder's pid — -1 for an OFD lock —, device and inode, range), so the text changes, and
// readProcLocks gives back the same Set object only while every read since found the text unchanged. What no read
// can show is a line that went away and came back byte for byte between two reads: a VM's lock file removed with its
// state, its inode reused by a lock file in this unit, locked the same way by a process of the same pid. So a unit
// is remembered for FREE_FOR_MS after its walk only: far less than a VM stopping, its state removed and another one
// starting, and no pid comes round again that soon. Beyond that, as within one op (DESIGN.md), a file locked already
// and then moved or hard-linked into the unit is not seen; no swtpm, QEMU or libvirt does it. A unit is known by the
// device and inode of its directory: the very directory walked, with what is in it, wherever the agent's own renames
// move it; another directory put at its name is not known.
import type { BigIntStats } from 'node:fs';

/** As KnownUnits: more than a large host's states. A key is a short `dev:ino` string. */
const MAX_UNITS = 4096;
/** How long after its walk a unit found free is taken as free still, under the same locks. */
export const FREE_FOR_MS = 2000;

export class FreeUnits {
  #locks: ReadonlySet<string> | undefined;
  /** key → when it was walked (performance.now(), ms) */
  readonly #walked = new Map<string, number>();

  constructor(
    private readonly max = MAX_UNITS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Whether the directory `stats` describes was found free, under exactly `locks`, at most FREE_FOR_MS ago. */
  has(locks: ReadonlySet<string>, stats: BigIntStats): boolean {
    if (locks !== this.#locks) return false;
    const walked = this.#walked.get(keyOf(stats));
    return walked !== undefined && this.now() - walked <= FREE_FOR_MS;
  }

  /** The directory `stats` describes was walked and found free of `locks`, the Set readProcLocks gave. */
  add(locks: ReadonlySet<string>, stats: BigIntStats): void {
    if (locks !== this.#locks || this.#walked.size >= this.max) {
      this.#walked.clear();
      this.#locks = locks;
    }
    this.#walked.set(keyOf(stats), this.now());
  }
}

const keyOf = (stats: BigIntStats): string => `${stats.dev}:${stats.ino}`;

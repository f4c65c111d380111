// The state directories (units) of one root that a busy check walked and found free of every held lock, for as long
// as /proc/locks reads the very same text: a later check of such a unit needs no walk (preconditions.ts).
//
// Why that is sound: a unit becomes busy only by a lock on an inode in it. A lock taken anywhere adds a line to
// /proc/locks (holder's pid, device and inode, range), so the text changes, and readProcLocks gives back the same Set
// object only while every read since found the text unchanged (an equal Set made anew starts this memo afresh). An
// inode locked in the unit now under the same text was locked, by the same process, when the unit was walked, and was
// not in it then: it was moved or hard-linked in while locked, the one case the check within an op accepts already
// (DESIGN.md; no swtpm, QEMU or libvirt does it). A unit is known by the device and inode of its directory, not by its
// name: the agent's own renames below a root (a replace's `old.` and `new.` names, recovery putting a state back) bring
// another directory to a name, and that one has not been walked.
import type { BigIntStats } from 'node:fs';

/** As KnownUnits: more than a large host's states. A key is a short `dev:ino` string. */
const MAX_UNITS = 4096;

export class FreeUnits {
  #locks: ReadonlySet<string> | undefined;
  readonly #units = new Set<string>();

  constructor(private readonly max = MAX_UNITS) {}

  /** Whether the directory `stats` describes was found free while the locks read were exactly `locks`. */
  has(locks: ReadonlySet<string>, stats: BigIntStats): boolean {
    return locks === this.#locks && this.#units.has(keyOf(stats));
  }

  /** The directory `stats` describes was walked and found free of `locks`, the Set readProcLocks gave. */
  add(locks: ReadonlySet<string>, stats: BigIntStats): void {
    if (locks !== this.#locks || this.#units.size >= this.max) {
      this.#units.clear();
      this.#locks = locks;
    }
    this.#units.add(keyOf(stats));
  }
}

const keyOf = (stats: BigIntStats): string => `${stats.dev}:${stats.ino}`;

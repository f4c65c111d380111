// The state directories (units) a store has lately seen below one of its roots: what lets a write choose between
// opening a unit first and making it first (walk.ts). A hint only — a stale or missing name costs a write one more
// system call, never a wrong answer — so it is bounded, and forgets its oldest name when full.

/** As many names as a large host's states, a few hundred KiB at most. */
const MAX_NAMES = 4096;

export class KnownUnits {
  readonly #names = new Set<string>();

  constructor(private readonly max = MAX_NAMES) {}

  has(name: string): boolean {
    return this.#names.has(name);
  }

  add(name: string): void {
    if (this.#names.has(name)) return;
    if (this.#names.size >= this.max) {
      // A Set iterates in insertion order: the first is the oldest.
      for (const oldest of this.#names) {
        this.#names.delete(oldest);
        break;
      }
    }
    this.#names.add(name);
  }

  delete(name: string): void {
    this.#names.delete(name);
  }
}

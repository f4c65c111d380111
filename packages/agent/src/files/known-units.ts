// The state directories (units) a store has lately seen below one of its roots: what lets a write choose between
// opening a unit first and making it first (walk.ts). A hint only: a stale name costs a write the lookup of a missing
// name on the event loop (the wait walk.ts avoids), a missing one a trip through the thread pool for a mkdir that
// answers EEXIST; never a wrong answer. So it is bounded, and simply starts afresh when full.

/**
 * As many names as a large host's states. Each is a flat copy of at most NAME_MAX (255) bytes, so a root's set holds
 * at most ~2 MiB, whatever the requests' paths were.
 */
const MAX_NAMES = 4096;

export class KnownUnits {
  readonly #names = new Set<string>();

  constructor(private readonly max = MAX_NAMES) {}

  has(name: string): boolean {
    return this.#names.has(name);
  }

  add(name: string): void {
    if (this.#names.has(name)) return;
    // Full: forgotten all at once (the names in use come back with their next walk), in O(1), where dropping the
    // oldest one by one walks past the deleted slots at the front of the table each time.
    if (this.#names.size >= this.max) this.#names.clear();
    // A copy: a component split from a request's path may be a slice that keeps the whole path alive.
    this.#names.add(Buffer.from(name, 'utf8').toString('utf8'));
  }

  delete(name: string): void {
    this.#names.delete(name);
  }
}

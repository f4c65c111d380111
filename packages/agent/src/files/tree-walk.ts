// Walks a tree below a held directory without recursion and with a bounded number of open directories, however deep
// the tree is: below a state, the tree belongs to its owner (swtpm owns tpm2/), who can make it as deep and wide as
// the file system allows.
import { fstatSync, opendirSync, readdirSync } from 'node:fs';
import { opendir } from 'node:fs/promises';
import { setImmediate } from 'node:timers/promises';
import { openDir, type DirHandle } from './dir-handle.js';
import { at, CHILD_DIR_FLAGS, closeAll, nth, self } from './fd-path.js';
import { OpIoError } from './op-failure.js';
import { openChildDir } from './walk.js';

/** How far one walk may go: levels below its top, and entries (of every directory) in all. */
export interface WalkLimits {
  readonly maxDepth: number;
  readonly maxEntries: number;
}

/** Facts, digests and reads of a state: a state is 2 or 3 levels deep and has a few files. */
export const STATE_WALK: WalkLimits = Object.freeze({ maxDepth: 16, maxEntries: 10_000 });
/** Busy: every inode must be seen, at any depth; the entry bound only bounds the time one look takes. */
export const BUSY_WALK: WalkLimits = Object.freeze({ maxDepth: Infinity, maxEntries: 1_000_000 });
/** Removal: everything goes, whatever its shape. */
export const FULL_WALK: WalkLimits = Object.freeze({ maxDepth: Infinity, maxEntries: Infinity });

/** Directories held open at once: deeper ones are closed while below them and found again through `..`. */
const HELD_LEVELS = 16;

export interface WalkEntry {
  /** the directory holding the entry, held during the visit */
  readonly dir: DirHandle;
  readonly name: string;
  /** relative to the top, `/`-separated */
  readonly path: string;
  /** 0 for an entry of the top directory */
  readonly depth: number;
  /** what the directory listing says (d_type); a visitor that must be sure looks itself */
  readonly isDir: boolean;
}

export interface TreeVisitor {
  /** Each entry, parents before children: true walks into it, 'stop' ends the walk. */
  entry(entry: WalkEntry): Promise<boolean | 'stop'>;
  /** An entry walked into turned out not to be a directory (swapped for a link or a file since the listing). */
  notDir?(entry: WalkEntry): Promise<void>;
  /** A directory walked into has had all its entries visited: `parent` is held, `name` its name there. */
  leave?(parent: DirHandle, name: string): Promise<void>;
}

/** What is left of a walk's entries: shared by all the directories of one walk. */
export interface Budget {
  left: number;
  readonly max: number;
}

interface Listed {
  readonly name: string;
  readonly isDir: boolean;
}

interface Frame {
  /** undefined while a deeper frame is current and this one is beyond HELD_LEVELS */
  handle: DirHandle | undefined;
  /** identity of the directory, recorded when its handle is let go */
  id?: { readonly dev: bigint; readonly ino: bigint };
  readonly entries: readonly Listed[];
  next: number;
  /** the path of the directory below the top, `''` or ending in `/` */
  readonly prefix: string;
  readonly name: string;
  /** the depth of its entries */
  readonly depth: number;
}

/**
 * Walks everything below `top` (held by the caller, who closes it). Past `limits` it throws an OpIoError: the op
 * answers io_error with its message (`E2BIG (deeper than 16 levels)`), the agent goes on.
 */
export async function walkTree(top: DirHandle, visitor: TreeVisitor, limits: WalkLimits): Promise<void> {
  const budget: Budget = { left: limits.maxEntries, max: limits.maxEntries };
  const stack: Frame[] = [
    { handle: top, entries: await listEntries(top, budget), next: 0, prefix: '', name: '', depth: 0 },
  ];
  let visited = 0;
  try {
    while (stack.length > 0) {
      const frame = nth(stack, stack.length - 1);
      const listed = frame.entries[frame.next];
      if (listed === undefined) {
        await leaveFrame(stack, visitor);
        continue;
      }
      frame.next += 1;
      // A visitor that makes only synchronous calls (the busy walk's lstat of each entry) never lets the event loop
      // in by itself: a state of a million entries, which its owner can make, would stall every request for seconds.
      visited += 1;
      if (visited % YIELD_EVERY === 0) await setImmediate();
      const dir = heldOf(frame);
      const entry: WalkEntry = { dir, ...listed, path: `${frame.prefix}${listed.name}`, depth: frame.depth };
      const go = await visitor.entry(entry);
      if (go === 'stop') return;
      if (go) await enter(stack, entry, visitor, budget, limits);
    }
  } finally {
    // Everything but the top, which is the caller's.
    await closeAll(stack.slice(1).flatMap((f) => (f.handle === undefined ? [] : [f.handle])));
  }
}

async function enter(
  stack: Frame[],
  entry: WalkEntry,
  visitor: TreeVisitor,
  budget: Budget,
  limits: WalkLimits,
): Promise<void> {
  if (entry.depth + 1 >= limits.maxDepth) throw new OpIoError(`E2BIG (deeper than ${limits.maxDepth} levels)`);
  const child = await openChildDir(entry.dir, entry.name);
  if (typeof child === 'string') {
    // Removed since the listing: nothing below it. A link or a file now: the visitor decides.
    if (child !== 'missing') await visitor.notDir?.(entry);
    return;
  }
  let entries: readonly Listed[];
  try {
    entries = await listEntries(child, budget);
  } catch (error) {
    await child.close();
    throw error;
  }
  const parent = nth(stack, stack.length - 1);
  // On the stack first: from here on, the walk's `finally` closes it whatever happens.
  stack.push({ handle: child, entries, next: 0, prefix: `${entry.path}/`, name: entry.name, depth: entry.depth + 1 });
  if (stack.length > HELD_LEVELS + 1) {
    const stats = await entry.dir.stat({ bigint: true });
    parent.id = { dev: stats.dev, ino: stats.ino };
    await entry.dir.close();
    parent.handle = undefined;
  }
}

/** Pops the current frame; its parent is held again (through `..`, checked to be the same directory). */
async function leaveFrame(stack: Frame[], visitor: TreeVisitor): Promise<void> {
  const done = stack.pop();
  const parent = stack.at(-1);
  if (done === undefined || parent === undefined) return;
  const handle = heldOf(done);
  try {
    if (parent.handle === undefined) parent.handle = await reopenParent(handle, parent);
  } finally {
    await handle.close();
  }
  await visitor.leave?.(parent.handle, done.name);
}

/**
 * The parent of `child` through `..`, refused unless it is the directory the walk left: a directory moved elsewhere
 * meanwhile (its owner may move it into any directory it can write) must not lead the walk out of the tree.
 */
async function reopenParent(child: DirHandle, parent: Frame): Promise<DirHandle> {
  const up = openDir(at(child, '..'), CHILD_DIR_FLAGS);
  const stats = await up.stat({ bigint: true });
  if (parent.id === undefined || stats.dev !== parent.id.dev || stats.ino !== parent.id.ino) {
    await up.close();
    throw new OpIoError('EAGAIN (a directory moved while the tree was walked)');
  }
  return up;
}

function heldOf(frame: Frame): DirHandle {
  if (frame.handle === undefined) throw new Error('a walk frame used while let go');
  return frame.handle;
}

/**
 * The entries of a held directory, read in batches of 128: a huge directory stops the walk as soon as it is too big.
 * Read synchronously on purpose, as /proc/locks is (locks.ts): a directory of a state is a few entries from the
 * dentry cache, one getdents(2) of microseconds, where opendir, read, read and close through libuv's thread pool
 * cost four trips each (a delete looked at its unit twice and ran ~25% slower that way). A huge directory yields
 * to the event loop every YIELD_EVERY entries, so other requests go on while it is read (and walkTree yields as
 * often while it visits them).
 */
export async function listEntries(dir: DirHandle, budget: Budget): Promise<Listed[]> {
  // A directory of one block (a state's usually) can hold a few hundred names at most: read whole in one call, which
  // costs a third of opendir, read and close made one by one.
  if (fstatSync(dir.fd).size <= SMALL_DIR_BYTES) {
    const all = readdirSync(self(dir), { withFileTypes: true });
    budget.left -= all.length;
    if (budget.left < 0) throw new OpIoError(`E2BIG (more than ${budget.max} entries)`);
    return all.map((dirent) => ({ name: dirent.name, isDir: dirent.isDirectory() }));
  }
  const entries: Listed[] = [];
  const listing = opendirSync(self(dir), { bufferSize: 128 });
  try {
    for (let dirent = listing.readSync(); dirent !== null; dirent = listing.readSync()) {
      budget.left -= 1;
      if (budget.left < 0) throw new OpIoError(`E2BIG (more than ${budget.max} entries)`);
      entries.push({ name: dirent.name, isDir: dirent.isDirectory() });
      if (entries.length % YIELD_EVERY === 0) await setImmediate();
    }
  } finally {
    listing.closeSync();
  }
  return entries;
}

/**
 * A directory's names, read as a stream of 128 at a time (a root of millions is never held whole); the iteration
 * closes the listing, at its end or a break alike.
 */
export async function* namesOf(dir: DirHandle): AsyncGenerator<string> {
  for await (const entry of await opendir(self(dir), { bufferSize: 128 })) yield entry.name;
}

const YIELD_EVERY = 1024;
/** The size (st_size) up to which a directory is listed in one call: one block on ext4. */
const SMALL_DIR_BYTES = 4096;

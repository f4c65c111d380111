// The agent's file store: every op confined to one of two roots, no symlink ever followed below a root, and
// every op on one unit (the first component below a root) run one at a time. Each root is opened once, here, and
// held: a root swapped for a link later leads nowhere (see root-dir.ts).
import { closeSync } from 'node:fs';
import { FILE_TYPES, isValidRoot, silentLogger, type FileType, type Logger } from '@hostfiles/shared';
import { createKeyedLock } from './keyed-lock.js';
import { readProcLocks, type ReadLockedInodes } from './locks.js';
import type { OpContext } from './op-context.js';
import { AGENT_OWNERSHIP } from './ownership.js';
import { readState } from './read-state.js';
import { recoverRoot } from './recover.js';
import { removeFile } from './remove-file.js';
import { openRootDir, type RootDir } from './root-dir.js';
import { swtpmStates, withSwtpmStates, type LookAtSwtpms } from './swtpm-open.js';
import type { FileRoots, FileStore, OpTiming, Ownerships, RecoveryReport, StoreEvent, StoreHooks } from './types.js';
import { busyUnit, listUnits, statUnit } from './units.js';
import { writeDir } from './write-dir.js';
import { writeFile } from './write-file.js';

export interface FileStoreOptions {
  readonly roots: FileRoots;
  /** Per root; the agent's own owner with 0600 files and 0700 directories when left out. */
  readonly ownership?: Partial<Ownerships>;
  /** Where locks are read from; /proc/locks unless a test wraps it. */
  readonly readLocks?: ReadLockedInodes;
  /** Which files running swtpms keep their TPM state in; swtpm-open.ts's look at /proc unless a test wraps it. */
  readonly swtpms?: LookAtSwtpms;
  /** Where the store says what it kept or could not do (quarantines, …); silent when left out. */
  readonly logger?: Logger<StoreEvent>;
  /** The clock of quarantine names; Date.now when left out. */
  readonly now?: () => number;
  /** Tests only: see StoreHooks. */
  readonly hooks?: StoreHooks;
}

/**
 * Opens both roots (throws a FileStoreError when one is missing, not a directory, or has a symbolic link on its
 * path) and holds them for the life of the process.
 */
export function createFileStore(options: FileStoreOptions): FileStore {
  for (const root of [options.roots.TpmState, options.roots.NvRam]) {
    if (!isValidRoot(root)) throw new RangeError(`invalid root: ${JSON.stringify(root)}`);
  }
  // Only TPM states can be a swtpm's state file; NVRAM stores are locked by the QEMU that uses them.
  const swtpms = options.swtpms ?? swtpmStates('/proc', { root: options.roots.TpmState });
  const tpmState: RootDir = { ...openRootDir(options.roots.TpmState), swtpms };
  let nvRam: RootDir;
  try {
    nvRam = openRootDir(options.roots.NvRam);
  } catch (error) {
    closeSync(tpmState.fd);
    throw error;
  }
  const roots: Readonly<Record<FileType, RootDir>> = { TpmState: tpmState, NvRam: nvRam };
  const locks = options.readLocks ?? readProcLocks;
  // Below the TPM state root, a running swtpm's state file counts as locked, at any depth (swtpm-open.ts).
  const readLocksOf: Readonly<Record<FileType, ReadLockedInodes>> = {
    TpmState: withSwtpmStates(locks, swtpms),
    NvRam: locks,
  };
  const rootOf = (type: FileType): RootDir => {
    if (!(FILE_TYPES as readonly string[]).includes(type))
      throw new RangeError(`unknown file type: ${JSON.stringify(type)}`);
    return roots[type];
  };
  const logger = options.logger ?? silentLogger<StoreEvent>();
  const now = options.now ?? Date.now;
  const ctxOf = (type: FileType): OpContext => ({
    ownership: options.ownership?.[type] ?? AGENT_OWNERSHIP,
    readLocks: readLocksOf[type],
    logger,
    now,
    hooks: options.hooks ?? {},
  });
  const lock = createKeyedLock();
  // Two commands can never stage onto one target at once, and readers never see a state halfway swapped.
  const onUnit = <T>(
    type: FileType,
    components: readonly string[],
    run: () => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> => lock(`${rootOf(type).path}\0${checked(components)[0] ?? ''}`, run, signal);
  // A changing op under its unit's lock, timed as its command asks (OpTiming).
  const changing = <T>(
    type: FileType,
    components: readonly string[],
    timing: OpTiming | undefined,
    op: (ctx: OpContext) => Promise<T>,
  ): Promise<T> => {
    const ctx: OpContext = {
      ...ctxOf(type),
      ...(timing?.gate === undefined ? {} : { gate: timing.gate }),
      ...(timing?.deadline === undefined ? {} : { deadline: timing.deadline }),
    };
    const onDurable = timing?.onDurable;
    if (onDurable === undefined) return onUnit(type, components, () => op(ctx));
    return new Promise<T>((resolve, reject) => {
      onUnit(type, components, async () => {
        const deferred: Promise<void>[] = [];
        const answer = await op({ ...ctx, defer: (durable) => deferred.push(durable) });
        const durable = Promise.all(deferred).then(() => undefined);
        onDurable(durable);
        resolve(answer);
        // The unit stays locked until the answer's fsyncs are done.
        await durable;
      }).catch(reject); // a rejection after the answer is the caller's through `durable`
    });
  };
  // `async`: a programmer error rejects like every other outcome of these methods, never throws synchronously.
  return {
    write: async (type, components, content, expect, timing) =>
      changing(type, components, timing, (ctx) => writeFile(rootOf(type), components, content, expect, ctx)),
    writeDir: async (type, components, entries, expect, timing) =>
      changing(type, components, timing, (ctx) => writeDir(rootOf(type), components, entries, expect, ctx)),
    remove: async (type, components, expect, timing) =>
      changing(type, components, timing, (ctx) => removeFile(rootOf(type), components, expect, ctx)),
    read: async (type, components, maxContentChars = Infinity) =>
      onUnit(type, components, () => readState(rootOf(type), components, maxContentChars)),
    stat: async (type, components) =>
      onUnit(type, components, () => statUnit(rootOf(type), components, readLocksOf[type])),
    busy: async (type, components) =>
      onUnit(type, components, () => busyUnit(rootOf(type), components, readLocksOf[type])),
    list: async (type, budget) =>
      listUnits(
        type,
        rootOf(type),
        { readLocks: readLocksOf[type], logger },
        (name, describe, signal) => onUnit(type, [name], describe, signal),
        budget,
      ),
    recover: async () => {
      const envOf = (type: FileType) => ({ readLocks: readLocksOf[type], logger, now });
      return sum(await recoverRoot(roots.TpmState, envOf('TpmState')), await recoverRoot(roots.NvRam, envOf('NvRam')));
    },
  };
}

const sum = (a: RecoveryReport, b: RecoveryReport): RecoveryReport => ({
  completed: a.completed + b.completed,
  restored: a.restored + b.restored,
  removed: a.removed + b.removed,
  quarantined: a.quarantined + b.quarantined,
});

/** The caller confined the path already; a component that could escape here is a bug, not a request. */
function checked(components: readonly string[]): readonly string[] {
  if (components.length === 0) throw new RangeError('no path components');
  for (const c of components) {
    if (c === '' || c === '.' || c === '..' || c.includes('/') || c.includes('\0')) {
      throw new RangeError(`invalid path component: ${JSON.stringify(c)}`);
    }
  }
  return components;
}

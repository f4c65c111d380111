// One agent per stateDir: the lock is a unix socket at <stateDir>/agent.lock, listened on by the holder.
// Node has no flock; a listening socket is the lock the kernel holds for us: it goes with the process however it
// ends (SIGKILL included). Its file is left behind then, but nothing listens on it: the next agent's connection is
// refused, and it removes the file and listens again. A pathname, not an abstract name: the stateDir is root's and
// 0700, so no other local user can take the name first (an abstract name is open to anyone who can guess it).
import { chmodSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';

export interface StateLock {
  /** the socket's path */
  readonly path: string;
  release(): void;
}

export type LockOutcome =
  | { readonly ok: true; readonly lock: StateLock }
  /** inUse: another agent holds it (a usage error); otherwise the lock could not be taken (maybe transient) */
  | { readonly ok: false; readonly inUse: boolean; readonly error: string; readonly holderPid?: number };

/** How long a refused start waits for the holder to say its pid; the refusal stands without it. */
const HOLDER_TIMEOUT_MS = 1000;
/** Stale sockets removed before giving up: more than one only if another start races this one. */
const LISTEN_ATTEMPTS = 3;

export const LOCK_FILE = 'agent.lock';

export function lockPath(stateDir: string): string {
  return join(stateDir, LOCK_FILE);
}

/**
 * Takes the lock of `stateDir` (which must exist) for this process. A connection to a held lock answers the holder's
 * pid, so a refused agent can name it. The socket never keeps the process alive (unref).
 */
export async function lockStateDir(stateDir: string, pid: number): Promise<LockOutcome> {
  const path = lockPath(stateDir);
  for (let attempt = 1; ; attempt += 1) {
    const server = createServer((socket) => {
      // A peer gone before the answer (connect and close) is no failure of the agent's.
      socket.on('error', () => undefined);
      socket.end(`${pid}\n`);
    });
    const listened = await listenOn(server, path);
    if (listened === null) {
      chmodSync(path, 0o600);
      server.unref();
      return { ok: true, lock: { path, release: () => server.close() } };
    }
    if (listened.code !== 'EADDRINUSE') {
      return {
        ok: false,
        inUse: false,
        error: `cannot lock the stateDir ${stateDir}: ${listened.code ?? listened.message}`,
      };
    }
    const holder = await askHolder(path);
    if (holder.kind === 'held' || attempt === LISTEN_ATTEMPTS) {
      const holderPid = holder.kind === 'held' ? holder.pid : undefined;
      return {
        ok: false,
        inUse: true,
        error:
          `the stateDir ${stateDir} is in use by another agent` +
          (holderPid === undefined ? '' : ` (pid ${holderPid})`) +
          ': one agent per stateDir',
        ...(holderPid === undefined ? {} : { holderPid }),
      };
    }
    // Nobody listens: its holder died. The file goes, and the name is tried again.
    removeStale(path);
  }
}

function listenOn(server: Server, path: string): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => {
    server.once('error', resolve);
    server.listen({ path }, () => {
      resolve(null);
    });
  });
}

function removeStale(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    // Gone already (another start removed it): the next listen decides.
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

type Holder = { readonly kind: 'held'; readonly pid: number | undefined } | { readonly kind: 'stale' };

/** Connects to the lock: refused (or gone) is a dead holder's file; anything else is a live holder, pid if said. */
function askHolder(path: string): Promise<Holder> {
  return new Promise((resolve) => {
    let text = '';
    let failure: string | undefined;
    const socket = createConnection({ path });
    socket.setTimeout(HOLDER_TIMEOUT_MS, () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      failure = error.code ?? error.message;
    });
    socket.on('close', () => {
      if (failure === 'ECONNREFUSED' || failure === 'ENOENT') {
        resolve({ kind: 'stale' });
        return;
      }
      const pid = /^\d+$/.test(text.trim()) ? Number(text.trim()) : undefined;
      resolve({ kind: 'held', pid });
    });
  });
}

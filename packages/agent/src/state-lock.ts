// One agent per stateDir: the lock is an abstract unix socket named from the directory's device and inode.
// Node has no flock; a listening socket is the lock the kernel holds for us: it goes with the process however it
// ends (SIGKILL included), so no stale lock file is ever left to clean up. Abstract names are Linux only.
import { statSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';

export interface StateLock {
  /** the socket name, without its leading NUL */
  readonly name: string;
  release(): void;
}

export type LockOutcome =
  | { readonly ok: true; readonly lock: StateLock }
  | { readonly ok: false; readonly error: string; readonly holderPid?: number };

/** How long a refused start waits for the holder to say its pid; the refusal stands without it. */
const HOLDER_TIMEOUT_MS = 1000;

/** The lock's name: the same directory under any path (a symlink, a bind mount) is one lock. */
export function lockName(stateDir: string): string {
  const { dev, ino } = statSync(stateDir, { bigint: true });
  return `hostfiles-agent:${dev}:${ino}`;
}

/**
 * Takes the lock of `stateDir` (which must exist) for this process. A connection to a held lock answers the holder's
 * pid, so a refused agent can name it. The socket never keeps the process alive (unref).
 */
export async function lockStateDir(stateDir: string, pid: number): Promise<LockOutcome> {
  const name = lockName(stateDir);
  const server = createServer((socket) => {
    socket.end(`${pid}\n`);
  });
  const listened = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
    server.once('error', resolve);
    server.listen({ path: `\0${name}` }, () => {
      resolve(null);
    });
  });
  if (listened === null) {
    server.unref();
    return { ok: true, lock: { name, release: () => server.close() } };
  }
  if (listened.code !== 'EADDRINUSE') {
    return { ok: false, error: `cannot lock the stateDir ${stateDir}: ${listened.code ?? listened.message}` };
  }
  const holderPid = await askHolder(name);
  return {
    ok: false,
    error:
      `the stateDir ${stateDir} is in use by another agent` +
      (holderPid === undefined ? '' : ` (pid ${holderPid})`) +
      ': one agent per stateDir',
    ...(holderPid === undefined ? {} : { holderPid }),
  };
}

function askHolder(name: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    let text = '';
    const socket = createConnection({ path: `\0${name}` });
    socket.setTimeout(HOLDER_TIMEOUT_MS, () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
    });
    socket.on('error', () => undefined); // the refusal stands without the pid
    socket.on('close', () => {
      const pid = /^\d+$/.test(text.trim()) ? Number(text.trim()) : undefined;
      resolve(pid);
    });
  });
}

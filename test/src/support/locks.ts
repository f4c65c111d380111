// Holding a lock on a file the way a running QEMU or swtpm does, with util-linux flock(1): the lock shows in
// /proc/locks, which is what the agent reads. Resolves once the lock is held; release() kills the holder.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface HeldLock {
  release(): Promise<void>;
}

export async function holdLock(path: string): Promise<HeldLock> {
  // Its own process group: flock's child (the shell, then sleep) inherits the locked descriptor, and must die too.
  const child = spawn('flock', ['--exclusive', path, '-c', 'echo locked; exec sleep infinity'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true,
  });
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      resolve();
    }),
  );
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', () => {
      resolve();
    });
    child.once('error', reject);
    void exited.then(() => {
      reject(new Error(`flock ${path} exited before holding the lock`));
    });
  });
  return {
    async release() {
      const { pid } = child;
      if (pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(-pid, 'SIGKILL');
      await exited;
    },
  };
}

// Stopping a child process that a benchmark started: what both packages' benchmarks do with their servers.
import type { ChildProcess } from 'node:child_process';

/** How long a child has to exit after SIGTERM before it is sent SIGKILL. */
export const STOP_GRACE_MS = 5000;

/**
 * SIGTERM, then SIGKILL if it has not exited within `graceMs`; settles once it has exited (at once when it already
 * had). Never rejects, and never leaves a child behind that ignores SIGTERM.
 */
export function stopChild(child: ChildProcess, graceMs = STOP_GRACE_MS): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

// Peak memory of a process, as the kernel counts it: VmHWM, which writing 5 to clear_refs resets (Linux ≥ 4.0).
import { readFileSync, writeFileSync } from 'node:fs';

export function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

/** The peak resident set size since the last reset, in KiB. */
export function peakRssKiB(pid: number): number {
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (match?.[1] === undefined) throw new Error(`no VmHWM for process ${pid}`);
  return Number(match[1]);
}

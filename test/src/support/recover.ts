// What a recover from a lost host must leave, checked alike by the flow's tests and the CLI's.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

/** What `vm recover` reports (the flow's report, or `vm recover --json`), as far as these checks read it. */
export interface RecoverReport {
  readonly epoch: number | null;
  readonly files: readonly { readonly path: string; readonly status: string }[];
  readonly scheduled: readonly { readonly path: string }[];
}

/**
 * A recover of one state from a lost host: epoch 1, the state written at `moved` with the newest generation's bytes
 * (`content`), and the lost host's copy at `from` in the outbox, untouched (nothing reached that host).
 */
export function assertRecovered(report: RecoverReport, moved: string, from: string, content: Buffer): void {
  assert.equal(report.epoch, 1);
  assert.deepEqual(
    report.files.map((f) => [f.path, f.status]),
    [[moved, 'written']],
  );
  assert.deepEqual(
    report.scheduled.map((s) => s.path),
    [from],
    "the lost host's copy in the outbox",
  );
  assert.equal(Buffer.compare(readFileSync(moved), content), 0, 'the newest generation, byte-identical');
  assert.equal(Buffer.compare(readFileSync(from), content), 0, "the lost host's copy untouched: nothing reached it");
}

// Human output: aligned tables, times, and a progress line on a terminal's stderr.
import type { ProgressEvent } from '../flows/index.js';

/** A table under a header row. */
export const table = (headers: readonly string[], rows: readonly (readonly string[])[]): string =>
  columns([headers, ...rows]);

/** Rows of cells, separated by two spaces and padded to the widest cell; no trailing blanks. */
export function columns(rows: readonly (readonly string[])[]): string {
  const count = Math.max(0, ...rows.map((row) => row.length));
  const widths = Array.from({ length: count }, (_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return rows.map(line).join('\n');
}

/** An ISO time to the second, or '-' for never. */
export const formatTime = (ms: number | null): string =>
  ms === null ? '-' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

export const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

export interface Progress {
  readonly onProgress: (event: ProgressEvent) => void;
  /** clears the line if one was drawn */
  finish(): void;
}

/** Progress on one line redrawn with `\r`; the caller creates it only when stderr is a terminal. */
export function createProgress(write: (text: string) => void): Progress {
  let drawn = false;
  return {
    onProgress(event) {
      drawn = true;
      const host = event.host === undefined ? '' : ` (${event.host})`;
      write(`\r\x1b[K${event.flow}: ${event.done}/${event.total} hosts${host}`);
    },
    finish() {
      if (drawn) write('\r\x1b[K');
      drawn = false;
    },
  };
}

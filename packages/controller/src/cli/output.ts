// Human output: aligned tables, times, and a progress line on a terminal's stderr.
import type { ProgressEvent } from '../flows/index.js';

// C0 controls, DEL and C1 controls: what a terminal may read as a command (an escape sequence, a carriage return)
// instead of text. File names come from the QEMU or swtpm user, and reach reports, reasons and tables.
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROLS = /[\u0000-\u001f\u007f-\u009f]/g;
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROLS_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g;
const shown = (char: string): string => `\\x${char.charCodeAt(0).toString(16).padStart(2, '0')}`;

/**
 * `text` as a terminal shows it and does nothing else: each control character written as `\xNN`, newlines too
 * unless `lines` (a report's own line breaks).
 */
export const visible = (text: string, lines = false): string =>
  text.replace(lines ? CONTROLS_BUT_NEWLINE : CONTROLS, shown);

/** A table under a header row. */
export const table = (headers: readonly string[], rows: readonly (readonly string[])[]): string =>
  columns([headers, ...rows]);

/** Rows of cells, separated by two spaces and padded to the widest cell; no trailing blanks. */
export function columns(rows: readonly (readonly string[])[]): string {
  rows = rows.map((row) => row.map((cell) => visible(cell)));
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
      write(`\r\x1b[K${event.flow}: ${event.done}/${event.total} hosts${visible(host)}`);
    },
    finish() {
      if (drawn) write('\r\x1b[K');
      drawn = false;
    },
  };
}

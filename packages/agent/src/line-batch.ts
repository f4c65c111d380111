// Log lines written together, once per turn of the event loop: one write(2) for the lines of a batch's 100 ops.
//
// stdout is a pipe or the journal's socket, written synchronously on Linux: each line was a system call, and a wake
// of the reader (journald) that took the CPU from the agent on a small host — ~9% of the agent's time in a batch of
// deletes. The lines of a turn wait only for the end of that turn (setImmediate), are flushed at once past
// MAX_BATCH_CHARS, and at exit (main.ts flushes them on 'exit', which an uncaught error also reaches).

/** Past this many characters waiting, the lines go out at once: the batch stays small whatever is logged. */
export const MAX_BATCH_CHARS = 64 * 1024;

export interface LineBatch {
  /** Takes one complete line (newline included); it is written by the end of this turn of the event loop. */
  write(line: string): void;
  /** Writes every line taken so far, now. */
  flush(): void;
}

/** `sink` receives the lines, in order, several at a time; `later` runs the flush at the end of the turn. */
export function createLineBatch(
  sink: (text: string) => void,
  later: (flush: () => void) => void = (flush) => {
    setImmediate(flush);
  },
): LineBatch {
  let lines: string[] = [];
  let chars = 0;
  let scheduled = false;
  const flush = (): void => {
    if (lines.length === 0) return;
    const text = lines.length === 1 ? (lines[0] ?? '') : lines.join('');
    lines = [];
    chars = 0;
    sink(text);
  };
  return {
    write(line) {
      lines.push(line);
      chars += line.length;
      if (chars >= MAX_BATCH_CHARS) {
        flush();
        return;
      }
      if (scheduled) return;
      scheduled = true;
      later(() => {
        scheduled = false;
        flush();
      });
    },
    flush,
  };
}

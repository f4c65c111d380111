// Group commit: lines appended while a group is being written and synced wait, and the next group writes and syncs
// them all at once. One durable write (an O_DSYNC write, or a write and an fdatasync) then covers the records of
// every request that arrived together.

export interface GroupCommitIo {
  /** Appends the text of one group (whole lines) to the file. */
  write(text: string): Promise<void>;
  /** Makes everything written so far durable (fdatasync; nothing left to do after an O_DSYNC write). */
  sync(): Promise<void>;
  /**
   * Runs after a group is durable and before its callers hear so (compaction): a failure fails the group's callers,
   * as a failed sync does.
   */
  afterSync(lines: number): Promise<void>;
}

export interface GroupCommit {
  /** Resolves once a sync that began after `line` was written has succeeded; rejects when its group failed. */
  append(line: string): Promise<void>;
  /** Resolves once every line appended so far has been settled. */
  drain(): Promise<void>;
}

interface Pending {
  readonly line: string;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

export function createGroupCommit(io: GroupCommitIo): GroupCommit {
  let queue: Pending[] = [];
  let running: Promise<void> | undefined;
  // A failed write may have left part of a line: the next group starts on a line of its own (an empty line is
  // skipped when the journal is read), or its first record would be glued to the torn one and lost.
  let torn = false;

  const commit = async (group: readonly Pending[]): Promise<void> => {
    const text = `${torn ? '\n' : ''}${group.map((p) => `${p.line}\n`).join('')}`;
    try {
      await io.write(text);
      torn = false;
      await io.sync();
      await io.afterSync(group.length);
    } catch (error) {
      torn = true;
      for (const pending of group) pending.reject(error);
      return;
    }
    for (const pending of group) pending.resolve();
  };

  const run = async (): Promise<void> => {
    // Let every request that reached this turn of the event loop join the first group, not only the first caller.
    await new Promise((resolve) => setImmediate(resolve));
    while (queue.length > 0) {
      const group = queue;
      queue = [];
      await commit(group);
    }
    running = undefined;
  };

  return {
    append: (line) =>
      new Promise<void>((resolve, reject) => {
        queue.push({ line, resolve, reject });
        running ??= run();
      }),
    drain: async () => {
      while (running !== undefined) await running;
    },
  };
}

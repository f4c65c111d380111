// The entry that loads nothing else (no zod): what the controller's command table needs before it knows which command
// runs, so that its --help starts about as fast as node itself. The main entry exports all of it too.

/** The two kinds of file hostfiles keeps. */
export const FILE_TYPES = ['TpmState', 'NvRam'] as const;
export type FileType = (typeof FILE_TYPES)[number];

/**
 * Why an agent's listing stops short (`truncated`), as reports, help and the API document say it: its name and byte
 * bounds, and the time its request gave it (ANSWER_WITHIN_HEADER). Here, not beside the schemas: the controller's
 * command table says it in `--help`, and loads no zod.
 */
export const LISTING_BOUNDS =
  'more than 5,000 names in a root, more than 64 GiB to hash, or out of the time its controller gave it';

/**
 * A uuid as hostfiles writes them (a libvirt domain's, an agent's host uuid): lowercase, 8-4-4-4-12 hex digits. A
 * host or VM is named by its uuid or its name, and a ref of this shape is a uuid in every lookup.
 */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A program's two output streams, as `process` has them. */
export interface OutputStreams {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

/**
 * Watches stdout and stderr for a reader that went away (EPIPE: `| head`, a journal stream that broke). That is no
 * failure of the program: the stream is marked gone (the program writes to it no more) instead of its error ending
 * the process, and `onGone` hears it once. Any other error of a stream is thrown, as without a listener. Here for both
 * programs' entry points; the controller's loads nothing else at start-up.
 */
export function watchReaders(
  streams: OutputStreams,
  onGone?: (name: keyof OutputStreams) => void,
): Readonly<Record<keyof OutputStreams, boolean>> {
  const gone = { stdout: false, stderr: false };
  for (const name of ['stdout', 'stderr'] as const) {
    streams[name].on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
      if (gone[name]) return;
      gone[name] = true;
      onGone?.(name);
    });
  }
  return gone;
}

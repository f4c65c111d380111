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

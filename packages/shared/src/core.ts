// The entry that loads nothing else (no zod): what the controller's command table needs before it knows which command
// runs, so that its --help starts about as fast as node itself. The main entry exports all of it too.

/** The two kinds of file hostfiles keeps. */
export const FILE_TYPES = ['TpmState', 'NvRam'] as const;
export type FileType = (typeof FILE_TYPES)[number];

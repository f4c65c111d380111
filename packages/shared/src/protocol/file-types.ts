// The two kinds of file hostfiles keeps, apart from the schemas so that a reader of the names loads no zod.
export const FILE_TYPES = ['TpmState', 'NvRam'] as const;
export type FileType = (typeof FILE_TYPES)[number];

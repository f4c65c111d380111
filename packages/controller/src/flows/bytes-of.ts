// What the agent reads of recorded states to list, stat or read them: an attempt is given the time it takes.

/** The bytes of the recorded states `rows` (each row's size: a file's, or the sum of a directory's files). */
export const bytesOf = (rows: readonly { readonly size: number }[]): number => rows.reduce((n, row) => n + row.size, 0);

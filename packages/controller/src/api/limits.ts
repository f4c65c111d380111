// The API's bounds that the command line shares, apart from the schemas so that its command table loads no zod.

/** The most operations one answer lists; `GET /v1/operations` lists 50 unless asked. */
export const MAX_OPERATIONS_LIMIT = 1000;
export const DEFAULT_OPERATIONS_LIMIT = 50;

// The one error the file store throws: for whole-root scans that cannot go on (per-op problems are answers, not throws).

export class FileStoreError extends Error {
  override readonly name = 'FileStoreError';
  readonly code: string;

  constructor(message: string, options: { code: string; cause: unknown }) {
    super(message, { cause: options.cause });
    this.code = options.code;
  }
}

export const isFileStoreError = (value: unknown): value is FileStoreError => value instanceof FileStoreError;

// JSON-lines logging for both programs: one root logger made in main.ts, children carry context.
// Callers pass event names from their own closed set; nothing here ever formats file contents or keys.

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Readonly<Record<string, string | number | boolean | null | undefined>>;

export interface Logger<E extends string = string> {
  log(level: LogLevel, event: E, fields?: LogFields): void;
  info(event: E, fields?: LogFields): void;
  warn(event: E, fields?: LogFields): void;
  error(event: E, fields?: LogFields): void;
  child(fields: LogFields): Logger<E>;
}

export interface LoggerOptions {
  /** receives one complete line, newline included */
  readonly write: (line: string) => void;
  readonly now?: () => number;
  readonly fields?: LogFields;
}

export function createLogger<E extends string>(options: LoggerOptions): Logger<E> {
  const now = options.now ?? Date.now;
  const base = options.fields ?? {};
  const log = (level: LogLevel, event: E, fields?: LogFields): void => {
    options.write(`${JSON.stringify({ time: now(), level, event, ...base, ...fields })}\n`);
  };
  return {
    log,
    info: (event, fields) => {
      log('info', event, fields);
    },
    warn: (event, fields) => {
      log('warn', event, fields);
    },
    error: (event, fields) => {
      log('error', event, fields);
    },
    child: (fields) => createLogger<E>({ ...options, fields: { ...base, ...fields } }),
  };
}

/** A logger that drops everything, for tests and library callers that want silence. */
export const silentLogger = <E extends string>(): Logger<E> => createLogger<E>({ write: () => undefined });

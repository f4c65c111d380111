// JSON-lines logging for both programs: one root logger made in main.ts, children carry context.
// Callers pass event names from their own closed set; nothing here ever formats file contents or keys.

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Readonly<Record<string, string | number | boolean | null | undefined>>;

/** The syslog priority of each level, as journald reads it from a `<N>` prefix (SyslogLevelPrefix=yes). */
export const SYSLOG_PRIORITY: Readonly<Record<LogLevel, number>> = { error: 3, warn: 4, info: 6, debug: 7 };

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
  /**
   * Each line starts with its level's `<N>` syslog priority: for stdout connected to the journal (see
   * isJournalStream), which strips the prefix and files the JSON under that priority. Elsewhere the lines are bare
   * JSON, for jq and log shippers.
   */
  readonly syslogPrefix?: boolean;
}

export function createLogger<E extends string>(options: LoggerOptions): Logger<E> {
  const now = options.now ?? Date.now;
  const base = options.fields ?? {};
  const log = (level: LogLevel, event: E, fields?: LogFields): void => {
    const prefix = options.syslogPrefix === true ? `<${SYSLOG_PRIORITY[level]}>` : '';
    const time = new Date(now()).toISOString();
    options.write(`${prefix}${JSON.stringify({ time, level, event, ...base, ...fields })}\n`);
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

/**
 * Whether the stream whose device and inode are `stat` is the journal: systemd sets JOURNAL_STREAM to
 * `DEVICE:INODE` of the stdout or stderr it connects to the journal. A child whose stdout was redirected elsewhere
 * still inherits the variable, so it counts only where the numbers are this very stream's (systemd.exec(5)).
 */
export function isJournalStream(
  journalStream: string | undefined,
  stat: { readonly dev: bigint; readonly ino: bigint } | undefined,
): boolean {
  const match = /^(\d+):(\d+)$/.exec(journalStream ?? '');
  if (match === null || stat === undefined) return false;
  return BigInt(match[1] ?? '') === stat.dev && BigInt(match[2] ?? '') === stat.ino;
}

// The CLI's two errors and the one place that turns any error into an exit code and a line on stderr.
// The guards come from their own small modules, not the packages' indexes: a usage error loads no database driver.
import { isAgentCallError } from '../agents/agent-error.js';
import { isFlowError } from '../flows/deps.js';
import { isStoreError } from '../store/errors.js';
import { hasBrand } from '../brand.js';

const USAGE_ERROR: unique symbol = Symbol.for('hostfiles.UsageError');
const CLI_ERROR: unique symbol = Symbol.for('hostfiles.CliError');

/** Bad usage (unknown command or option, wrong arguments): exit 2, with a hint where to read more. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  /** see brand.ts: told apart by it, not by `instanceof` */
  readonly [USAGE_ERROR] = true;
  constructor(
    message: string,
    readonly hint: string = 'run `hostfiles --help` for the commands',
  ) {
    super(message);
  }
}

/** An expected failure the operator can act on (missing database, bad key file...): exit 1, one line. */
export class CliError extends Error {
  override readonly name = 'CliError';
  /** see brand.ts: told apart by it, not by `instanceof` */
  readonly [CLI_ERROR] = true;
}

export const isUsageError = (error: unknown): error is UsageError => hasBrand(error, USAGE_ERROR);
export const isCliError = (error: unknown): error is CliError => hasBrand(error, CLI_ERROR);

export interface Failure {
  readonly exitCode: 1 | 2;
  /** what goes to stderr, each line already prefixed */
  readonly text: string;
}

/** Expected errors answer one line and no stack; anything else is a bug and shows its stack. */
export function failureOf(error: unknown): Failure {
  const line = (message: string): string => `hostfiles: ${message}\n`;
  if (isUsageError(error)) return { exitCode: 2, text: `${line(error.message)}hostfiles: ${error.hint}\n` };
  // Bad input the flows find (a malformed URL, a path that is not absolute) is bad input like a usage error: exit 2.
  if (isFlowError(error)) return { exitCode: error.code === 'bad_input' ? 2 : 1, text: line(error.message) };
  if (isCliError(error)) return { exitCode: 1, text: line(error.message) };
  if (isStoreError(error)) return { exitCode: 1, text: line(`database: ${error.message}`) };
  if (isAgentCallError(error)) {
    return { exitCode: 1, text: line(`agent ${error.host}: ${error.failure}: ${error.message}`) };
  }
  const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
  return { exitCode: 1, text: line(`internal error: ${detail}`) };
}

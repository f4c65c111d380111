// The CLI's two errors and the one place that turns any error into an exit code and a line on stderr.
// The guards come from their own small modules, not the packages' indexes: a usage error loads no database driver.
import { isAgentCallError } from '../agents/agent-error.js';
import { isFlowError } from '../flows/deps.js';
import { isStoreError } from '../store/errors.js';
import { hasBrand } from '../brand.js';
import { visible } from './output.js';

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

/**
 * An expected failure the operator can act on, one line: exit 1 (a missing database or key, an agent out of reach),
 * or exit 2 when `badInput` (a file handed in that cannot be used as it is: a key or token open to others or not one,
 * a certificate that is not the key's, a state to write that cannot be read). Exit 2 is never restarted by the unit:
 * nothing but the operator fixes those.
 */
export class CliError extends Error {
  override readonly name = 'CliError';
  /** see brand.ts: told apart by it, not by `instanceof` */
  readonly [CLI_ERROR] = true;
  readonly exitCode: 1 | 2;
  constructor(message: string, options?: ErrorOptions & { readonly badInput?: boolean }) {
    super(message, options);
    this.exitCode = options?.badInput === true ? 2 : 1;
  }
}

/** A file handed in that cannot be used as it is: exit 2 (see CliError). */
export const badInput = (message: string): CliError => new CliError(message, { badInput: true });

export const isUsageError = (error: unknown): error is UsageError => hasBrand(error, USAGE_ERROR);
export const isCliError = (error: unknown): error is CliError => hasBrand(error, CLI_ERROR);

export interface Failure {
  readonly exitCode: 1 | 2;
  /** what goes to stderr, each line already prefixed */
  readonly text: string;
}

/** Expected errors answer one line and no stack; anything else is a bug and shows its stack. */
export function failureOf(error: unknown): Failure {
  // One line, as a terminal shows it: a message may carry a file name its owner chose. A bug's stack keeps its lines.
  const line = (message: string, lines = false): string => `hostfiles: ${visible(message, lines)}\n`;
  if (isUsageError(error)) return { exitCode: 2, text: `${line(error.message)}hostfiles: ${error.hint}\n` };
  // Bad input the flows find (a malformed URL, a path that is not absolute) is bad input like a usage error: exit 2.
  if (isFlowError(error)) return { exitCode: error.code === 'bad_input' ? 2 : 1, text: line(error.message) };
  if (isCliError(error)) return { exitCode: error.exitCode === 2 ? 2 : 1, text: line(error.message) };
  if (isStoreError(error)) return { exitCode: 1, text: line(`database: ${error.message}`) };
  if (isAgentCallError(error)) {
    return { exitCode: 1, text: line(`agent ${error.host}: ${error.failure}: ${error.message}`) };
  }
  const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
  return { exitCode: 1, text: line(`internal error: ${detail}`, true) };
}

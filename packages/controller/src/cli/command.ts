// What a command is: its words, arguments and flags (for parsing and for --help) and what it runs.
import type { ControllerPaths } from '../config.js';
import type { FlowDeps, LeaseSettings } from '../flows/index.js';
import type { Store } from '../store/index.js';
import type { FlagSpec } from './args.js';

export interface ArgSpec {
  /** placeholder in help: NAME, VM... */
  readonly name: string;
  readonly arity: 'one' | 'optional' | 'many';
}

export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** progress lines are drawn only on a terminal */
  readonly stderrIsTty: boolean;
  /**
   * For long-running commands (`serve`): aborted on SIGTERM/SIGINT. The handlers are installed only when a command
   * asks, so every other command still dies on a signal as usual.
   */
  readonly stopSignal?: () => AbortSignal;
  /**
   * For commands that run flows: `note` is what to say when SIGINT or SIGTERM ends the command (it still dies of the
   * signal, as usual). Not once `stopSignal` was asked: that command stops on its own. Answers the way to stop
   * listening (once the flows are done, there is nothing to say).
   */
  readonly onInterrupt?: (note: (signal: NodeJS.Signals) => string) => () => void;
  /** For `serve`'s log: whether stdout is the journal (its lines then start with their `<N>` syslog priority). */
  readonly stdoutIsJournal?: () => Promise<boolean>;
  /**
   * For `serve`: `listener` runs on each SIGHUP from now on. Installed only when a command asks, so any other command
   * still ends on a hangup as usual.
   */
  readonly onReload?: (listener: () => void) => void;
}

export interface CommandContext {
  readonly io: CliIo;
  readonly json: boolean;
  readonly paths: ControllerPaths;
  /** The existing database, migrated; a missing one is refused, never created. Closed by the runner. */
  store(): Promise<Store>;
  /** The store, the controller key and an agent client: what a flow needs. */
  /**
   * The flows' deps: the database, key and agents, and this process registered as a controller of the database (its
   * flows hold their keys as leases there, beside any other controller). `lease`: serve's settings, else defaults.
   */
  flows(lease?: LeaseSettings): Promise<FlowDeps>;
  /** the clock (main's): for a command that says something of time without running a flow (the audit's expiries) */
  readonly now: () => number;
  /** `value` as JSON with --json, else the text `human` makes. Only this writes results to stdout. */
  print(value: unknown, human: () => string): void;
}

export interface CommandInput {
  /** the positional arguments, their count already checked against the command's ArgSpecs */
  readonly args: readonly string[];
  string(name: string): string | undefined;
  /** a flag the command declares `required`: the parser has checked it is there */
  required(name: string): string;
  bool(name: string): boolean;
}

export interface Command {
  readonly words: readonly string[];
  readonly args: readonly ArgSpec[];
  readonly flags: readonly FlagSpec[];
  /** one line, for the command list */
  readonly summary: string;
  /** more lines, for the command's own --help */
  readonly details?: string;
  run(ctx: CommandContext, input: CommandInput): Promise<void>;
}

/** The first positional argument; the parser has checked it is there. */
export function firstArg(input: CommandInput): string {
  const [first] = input.args;
  if (first === undefined) throw new Error('bug: a required argument passed the parser');
  return first;
}

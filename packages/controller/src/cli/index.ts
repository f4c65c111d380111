// The `hostfiles` command line: the command table, dispatch, and help. main.ts hands it argv, env and output.
import { resolvePaths, type ControllerEnv } from '../config.js';
import { ABS_PATH, closest, dropTrailingSlashes, parseArgv, type FlagSpec, type ParsedArgv } from './args.js';
import type { CliIo, Command, CommandInput } from './command.js';
import { UsageError } from './errors.js';
import { BINDING_COMMANDS } from './binding.js';
import { DEMO_COMMANDS } from './demo.js';
import { FILE_COMMANDS } from './file.js';
import { commandHelp, GLOBAL_FLAGS, globalHelp, groupHelp } from './help.js';
import { HOST_COMMANDS } from './host.js';
import { HOST_RETIRE_COMMANDS } from './host-retire.js';
import { INIT_COMMANDS } from './init.js';
import { OPS_COMMANDS } from './ops.js';
import { PENDING_COMMANDS } from './pending.js';
import { SECUREBOOT_COMMANDS } from './secureboot.js';
import { SERVE_COMMANDS } from './serve.js';
import { STATE_COMMANDS } from './state.js';
import { SYNC_COMMANDS } from './sync.js';
import { TPM_COMMANDS } from './tpm.js';
import { VM_COMMANDS } from './vm.js';

export { CliError, UsageError, failureOf, type Failure } from './errors.js';
export type { CliIo, Command } from './command.js';

/**
 * Every command, in help order; a new group is one more file under cli/ and one more line here. These modules hold
 * the table and load what a command runs (the store, the agent client, zod, hono) only inside its `run`, so that
 * --help and usage errors start about as fast as node: `controller-startup.test.ts` checks what they load,
 * `bench/startup.ts` times them.
 */
export const COMMANDS: readonly Command[] = [
  ...INIT_COMMANDS,
  ...HOST_COMMANDS,
  ...HOST_RETIRE_COMMANDS,
  ...VM_COMMANDS,
  ...TPM_COMMANDS,
  ...BINDING_COMMANDS,
  ...FILE_COMMANDS,
  ...SYNC_COMMANDS,
  ...STATE_COMMANDS,
  ...PENDING_COMMANDS,
  ...OPS_COMMANDS,
  ...SECUREBOOT_COMMANDS,
  ...SERVE_COMMANDS,
  ...DEMO_COMMANDS,
];

export interface CliOptions {
  readonly io: CliIo;
  readonly env: ControllerEnv;
  /** read only for --version */
  readonly version: () => string;
  readonly now: () => number;
  readonly random: () => number;
}

/** Runs one command line; throws UsageError for bad usage and the command's errors as they are (see failureOf). */
export async function runCli(argv: readonly string[], options: CliOptions, commands = COMMANDS): Promise<void> {
  const parsed = parseArgv(argv, flagIndex(commands));
  const { words, flags } = parsed;
  const print = (text: string): void => {
    options.io.stdout(`${text}\n`);
  };
  if (words[0] === 'help') {
    print(helpFor(words.slice(1), commands));
    return;
  }
  if (words.length === 0) {
    if (flags.has('version') && !flags.has('help')) print(options.version());
    else if (flags.size === 0 || flags.has('help')) print(globalHelp(commands));
    else throw new UsageError('no command given');
    return;
  }
  const command = findCommand(words, commands, flags.has('help'));
  if (typeof command === 'string') {
    print(command);
    return;
  }
  if (flags.has('version') && !flags.has('help')) {
    throw new UsageError('--version takes no command', 'run `hostfiles --version` alone');
  }
  if (flags.has('help')) {
    print(commandHelp(command));
    return;
  }
  const input = checkInput(command, parsed);
  const flagValue = (name: string): string | undefined => {
    const value = flags.get(name);
    return typeof value === 'string' ? value : undefined;
  };
  const paths = resolvePaths({ db: flagValue('db'), key: flagValue('key') }, options.env);
  // Loaded now, not with the table: it opens the database and agents (their drivers), which --help never needs.
  const { createCommandContext } = await import('./context.js');
  const { ctx, close } = createCommandContext({
    io: options.io,
    json: flags.has('json'),
    paths,
    now: options.now,
    random: options.random,
  });
  try {
    await command.run(ctx, input);
  } finally {
    await close();
  }
}

/** Every flag any command takes; a name must mean the same kind of flag everywhere. */
function flagIndex(commands: readonly Command[]): Map<string, FlagSpec> {
  const index = new Map<string, FlagSpec>();
  for (const flag of [...GLOBAL_FLAGS, ...commands.flatMap((c) => c.flags)]) {
    const seen = index.get(flag.name);
    if (seen !== undefined && (seen.value === undefined) !== (flag.value === undefined)) {
      throw new Error(`bug: --${flag.name} is a switch in one command and takes a value in another`);
    }
    index.set(flag.name, seen ?? flag);
  }
  return index;
}

/** The longest command whose words start `words`; or, for a bare group with --help, that group's help text. */
function findCommand(words: readonly string[], commands: readonly Command[], help: boolean): Command | string {
  const matches = commands.filter((c) => c.words.every((word, i) => words[i] === word));
  const best = matches.sort((a, b) => b.words.length - a.words.length)[0];
  if (best !== undefined) return best;
  const [first = '', second] = words;
  const group = commands.filter((c) => c.words.length > 1 && c.words[0] === first);
  if (group.length > 0) {
    if (help && second === undefined) return groupHelp(first, group);
    const subs = group.map((c) => c.words.slice(1).join(' '));
    const hint = `run \`hostfiles ${first} --help\` for its commands`;
    if (second === undefined) throw new UsageError(`${first} needs a subcommand: ${subs.join(', ')}`, hint);
    const guess = closest(second, subs);
    throw new UsageError(
      `unknown command ${first} ${second}${guess === undefined ? '' : ` (did you mean ${first} ${guess}?)`}`,
      hint,
    );
  }
  const guess = closest(first, [...new Set(commands.map((c) => c.words[0] ?? ''))]);
  throw new UsageError(`unknown command ${first}${guess === undefined ? '' : ` (did you mean ${guess}?)`}`);
}

function helpFor(words: readonly string[], commands: readonly Command[]): string {
  if (words.length === 0) return globalHelp(commands);
  const found = findCommand(words, commands, true);
  return typeof found === 'string' ? found : commandHelp(found);
}

/** Checks the command's flags and argument count; answers what its `run` reads. */
function checkInput(command: Command, { words, flags }: ParsedArgv): CommandInput {
  const name = command.words.join(' ');
  const hint = `see \`hostfiles ${name} --help\``;
  const allowed = new Set([...GLOBAL_FLAGS, ...command.flags].map((flag) => flag.name));
  for (const flag of flags.keys()) {
    if (!allowed.has(flag)) throw new UsageError(`${name} takes no option --${flag}`, hint);
  }
  for (const flag of command.flags) {
    if (flag.required === true && !flags.has(flag.name)) {
      throw new UsageError(`${name} needs --${flag.name} ${flag.value ?? ''}`.trimEnd(), hint);
    }
  }
  const args = words.slice(command.words.length);
  const min = command.args.filter((a) => a.arity !== 'optional').length;
  const max = command.args.some((a) => a.arity === 'many') ? Infinity : command.args.length;
  if (args.length < min) {
    const missing = command.args.slice(args.length).filter((a) => a.arity !== 'optional');
    throw new UsageError(`${name} needs ${missing.map((a) => a.name).join(' ')}`, hint);
  }
  if (args.length > max) throw new UsageError(`${name} got an unexpected argument: ${args[max] ?? ''}`, hint);
  const statePaths = new Set(command.flags.filter((flag) => flag.value === ABS_PATH).map((flag) => flag.name));
  const valueOf = (flag: string): string | undefined => {
    const value = flags.get(flag);
    if (typeof value !== 'string') return undefined;
    return statePaths.has(flag) ? dropTrailingSlashes(value) : value;
  };
  return {
    args,
    string: valueOf,
    required: (flag) => {
      const value = valueOf(flag);
      if (value === undefined) throw new Error(`bug: the required --${flag} passed the parser`);
      return value;
    },
    bool: (flag) => flags.get(flag) === true,
  };
}

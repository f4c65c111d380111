// --help text, made from the command table so it cannot drift from what the parser accepts.
import type { FlagSpec } from './args.js';
import type { Command } from './command.js';
import { columns } from './output.js';

export const GLOBAL_FLAGS: readonly FlagSpec[] = [
  {
    name: 'db',
    value: 'FILE|URL',
    help: 'the database: a SQLite file, or postgres://user@host/db[?schema=S] (default: $HOSTFILES_DB, else ./hostfiles.db)',
  },
  {
    name: 'key',
    value: 'FILE',
    help: "the controller's Ed25519 key, PKCS#8 PEM, mode 0600 (default: $HOSTFILES_KEY, else hostfiles.key beside a SQLite database, or in the working directory)",
  },
  { name: 'json', help: 'print the result as JSON on stdout (nothing else goes to stdout; every command but demo)' },
  { name: 'help', help: "this help, or a command's: hostfiles COMMAND --help (also -h, hostfiles help COMMAND)" },
  { name: 'version', help: 'print the version (alone: hostfiles --version)' },
];

const FOOTER = [
  'Only `init` creates a database; every other command refuses a missing one, or one `init` never made.',
  'Commands that run flows (add, check, write, remove, retry) read the controller key.',
  'Progress is drawn on stderr when it is a terminal.',
  'Exit codes: 0 ok (also when deletions are left pending), 1 failure, 2 bad usage.',
].join('\n');

const flagUsage = (flag: FlagSpec): string => `--${flag.name}${flag.value === undefined ? '' : ` ${flag.value}`}`;

/** `host add NAME URL`, `tpm remove VM [VM ...]`, `vm add NAME --host HOST [--uefi]` */
export function synopsis(command: Command): string {
  const args = command.args.map((arg) => {
    switch (arg.arity) {
      case 'one':
        return arg.name;
      case 'optional':
        return `[${arg.name}]`;
      case 'many':
        return `${arg.name} [${arg.name} ...]`;
    }
  });
  const flags = shown(command.flags).map((flag) => (flag.required === true ? flagUsage(flag) : `[${flagUsage(flag)}]`));
  return [...command.words, ...args, ...flags].join(' ');
}

const shown = (flags: readonly FlagSpec[]): readonly FlagSpec[] => flags.filter((flag) => flag.hidden !== true);

const flagLines = (flags: readonly FlagSpec[]): string =>
  columns(shown(flags).map((flag) => [`  ${flagUsage(flag)}`, flag.help]));

/** Synopsis and summary side by side; a synopsis too long for the column puts its summary on the next line. */
function commandLines(commands: readonly Command[]): string {
  const MAX = 44;
  const width = Math.max(0, ...commands.map((c) => synopsis(c).length).filter((n) => n <= MAX));
  return commands
    .map((command) => {
      const text = synopsis(command);
      return text.length <= width
        ? `  ${text.padEnd(width)}  ${command.summary}`
        : `  ${text}\n  ${' '.repeat(width)}  ${command.summary}`;
    })
    .join('\n');
}

export function globalHelp(commands: readonly Command[]): string {
  return [
    'Usage: hostfiles [--db FILE|URL] [--key FILE] [--json] COMMAND [ARGS]',
    '',
    "Keeps the vTPM state and NVRAM files of VMs true to this controller's database across KVM hosts.",
    '',
    'Commands:',
    commandLines(commands),
    '',
    'Options (every command):',
    flagLines(GLOBAL_FLAGS),
    '',
    FOOTER,
  ].join('\n');
}

export function groupHelp(group: string, commands: readonly Command[]): string {
  return [
    `Usage: hostfiles ${group} SUBCOMMAND [ARGS]`,
    '',
    commandLines(commands),
    '',
    'hostfiles COMMAND --help tells more about each.',
  ].join('\n');
}

export function commandHelp(command: Command): string {
  return [
    `Usage: hostfiles ${synopsis(command)}`,
    '',
    `${command.summary.charAt(0).toUpperCase()}${command.summary.slice(1)}.`,
    ...(command.details === undefined ? [] : ['', command.details]),
    '',
    ...(shown(command.flags).length === 0 ? [] : ['Options:', flagLines(command.flags), '']),
    'Options (every command):',
    flagLines(GLOBAL_FLAGS),
  ].join('\n');
}

// `hostfiles ops list|show`: the journal of flows, as an operator reads it.
import { UUID_PATTERN } from '@hostfiles/shared/core';
import { DEFAULT_OPERATIONS_LIMIT, MAX_OPERATIONS_LIMIT } from '../api/limits.js';
import {
  isOperationKind,
  nameOperation,
  OPERATION_KINDS,
  OPERATION_STATES,
  type NamedOperation,
  type OperationState,
} from '../store/types.js';
import { firstArg, type Command } from './command.js';
import { badInput, CliError, UsageError } from './errors.js';
import { loadNames } from './lookup.js';
import { formatTime, table } from './output.js';

// The API's bounds: the command line lists no more at once than GET /v1/operations.
const DEFAULT_OPS_LIMIT = DEFAULT_OPERATIONS_LIMIT;
const MAX_OPS_LIMIT = MAX_OPERATIONS_LIMIT;

const isState = (value: string): value is OperationState => (OPERATION_STATES as readonly string[]).includes(value);

type Fields = Readonly<Record<string, unknown>>;
const isFields = (value: unknown): value is Fields => typeof value === 'object' && value !== null;

const FAILED_STATUSES = new Set(['failed', 'unknown', 'missing']);

/** Why one item of a report did not succeed, if it says: a file's reason, a fenced capture's, a host's error. */
function itemError(item: unknown): string | undefined {
  if (!isFields(item)) return undefined;
  const where = typeof item['path'] === 'string' ? item['path'] : typeof item['host'] === 'string' ? item['host'] : '';
  const prefix = where === '' ? '' : `${where}: `;
  const failed = FAILED_STATUSES.has(String(item['status'])) || item['code'] === 'fenced';
  if (failed && typeof item['reason'] === 'string') return `${prefix}${item['reason']}`;
  return typeof item['error'] === 'string' ? `${prefix}${item['error']}` : undefined;
}

/**
 * What an operation's report says went wrong, on one line, if it says: its `error`, or else why the first of its
 * items that did not succeed did (a file that failed, is missing or whose outcome is unknown, a fenced capture, a
 * host not listed), and how many more — a write the agent answered `busy` has no error of its own, only its file's.
 */
export function reportError(report: unknown, state: OperationState = 'failed'): string {
  if (!isFields(report)) return '';
  const { error, file, notUpdated, fenced, failedHosts, read, files } = report;
  if (typeof error === 'string') return error;
  // A done operation's items that did not succeed are its news, not its error (a removal's pending deletions).
  if (state !== 'failed') return '';
  // What failed it first (a sync's own states not updated, its captures fenced, its hosts not listed), then any file.
  // Each once: a sync's states not updated are among its files too.
  const errors = [
    ...new Set(
      [file, notUpdated, fenced, failedHosts, read, files]
        .flatMap((item) => (Array.isArray(item) ? (item as unknown[]) : [item]))
        .map(itemError)
        .filter((e) => e !== undefined),
    ),
  ];
  const [first] = errors;
  if (first === undefined) return '';
  return errors.length > 1 ? `${first} (and ${errors.length - 1} more)` : first;
}

function parseLimit(value: string | undefined): number {
  if (value === undefined) return DEFAULT_OPS_LIMIT;
  const limit = /^\d{1,4}$/.test(value) ? Number(value) : NaN;
  if (!(limit >= 1 && limit <= MAX_OPS_LIMIT)) {
    throw new UsageError(`--limit is a whole number from 1 to ${MAX_OPS_LIMIT}, not ${value}`, HINT);
  }
  return limit;
}

const HINT = 'see `hostfiles ops list --help`';

export const OPS_COMMANDS: readonly Command[] = [
  {
    words: ['ops', 'list'],
    args: [],
    flags: [
      { name: 'state', value: 'STATE', help: `only operations in this state: ${OPERATION_STATES.join(', ')}` },
      { name: 'kind', value: 'KIND', help: `only operations of this kind: ${OPERATION_KINDS.join(', ')}` },
      {
        name: 'limit',
        value: 'N',
        help: `at most N, from 1 to ${MAX_OPS_LIMIT} (default: ${DEFAULT_OPS_LIMIT})`,
      },
    ],
    summary: 'list the journaled operations, newest first: kind, subject, step, state, and why one failed',
    details: [
      "Every flow that changes state is journaled, as an operation of its kind (--kind's list). A running operation",
      'is in flight, or was left by a stopped controller: `hostfiles resume` carries it on. `hostfiles ops show ID`',
      'prints one with its input and report. SUBJECT names the VM (a removal: its VMs) or the host the operation was',
      'on, while its row exists, else its uuid (a destroyed VM, a removed host); --json keeps `subject`, the uuids,',
      'and adds `subjectName`, as shown.',
    ].join('\n'),
    async run(ctx, input) {
      const state = input.string('state');
      if (state !== undefined && !isState(state)) {
        throw new UsageError(`--state is ${OPERATION_STATES.join(', ')}, not ${state}`, HINT);
      }
      const limit = parseLimit(input.string('limit'));
      const kind = input.string('kind');
      if (kind !== undefined && !isOperationKind(kind)) {
        throw new UsageError(`--kind is one of ${OPERATION_KINDS.join(', ')}, not ${kind}`, HINT);
      }
      const store = await ctx.store();
      const operations = await store.listOperations({
        limit,
        ...(state === undefined ? {} : { state }),
        ...(kind === undefined ? {} : { kind }),
      });
      const names = await loadNames(store);
      const listed = operations.map((o) => nameOperation(o, names));
      ctx.print(listed, () =>
        listed.length === 0
          ? 'no operations'
          : table(
              ['ID', 'KIND', 'STATE', 'STEP', 'SUBJECT', 'CREATED', 'UPDATED', 'ERROR'],
              listed.map((o) => [
                o.id,
                o.kind,
                o.state,
                o.step,
                o.subjectName,
                formatTime(o.createdAt),
                formatTime(o.updatedAt),
                reportError(o.report, o.state),
              ]),
            ),
      );
    },
  },
  {
    words: ['ops', 'show'],
    args: [{ name: 'ID', arity: 'one' }],
    flags: [],
    summary: 'print one operation: its input, step, state and report',
    async run(ctx, input) {
      const id = firstArg(input);
      // Not one of the uuids `ops list` shows: a wrong argument (exit 2), not an operation looked for and not found.
      if (!UUID_PATTERN.test(id)) {
        // Loaded here, not with the command table (the shared package's main entry loads zod).
        const { truncate } = await import('@hostfiles/shared');
        throw badInput(`${truncate(id)} is not an operation id (a uuid: see hostfiles ops list)`);
      }
      const store = await ctx.store();
      const operation = await store.getOperation(id);
      if (operation === null) throw new CliError(`no operation ${id}`);
      const named = nameOperation(operation, await loadNames(store));
      ctx.print(named, () => formatOperation(named));
    },
  },
];

function formatOperation(o: NamedOperation): string {
  const error = reportError(o.report, o.state);
  return [
    `operation ${o.id}`,
    ...[
      ['kind', o.kind],
      ['subject', o.subjectName === o.subject ? o.subject : `${o.subjectName} (${o.subject})`],
      ['state', o.state],
      ['step', o.step],
      ['created', formatTime(o.createdAt)],
      ['updated', formatTime(o.updatedAt)],
      ...(error === '' ? [] : [['error', error]]),
    ].map(([name = '', value = '']) => `  ${`${name}:`.padEnd(9)}${value}`),
    'input:',
    indent(JSON.stringify(o.input, null, 2)),
    'report:',
    indent(o.report === null ? 'none yet' : JSON.stringify(o.report, null, 2)),
  ].join('\n');
}

const indent = (text: string): string =>
  text
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');

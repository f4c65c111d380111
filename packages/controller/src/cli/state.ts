// `hostfiles state history`: the generations kept of a VM's states, newest first; `hostfiles state keep`: how many.
import { FILE_TYPES, type FileType } from '@hostfiles/shared/core';
import type { FlagSpec } from './args.js';
import { firstArg, type Command } from './command.js';
import { UsageError } from './errors.js';
import { findVm, loadNames } from './lookup.js';
import { formatTime, table } from './output.js';
import { DEFAULT_KEEP_GENERATIONS, MAX_KEEP_GENERATIONS } from '../store/types.js';

const KEEP_HINT = 'see `hostfiles state keep --help`';

/** The value of --type, checked: TpmState or NvRam. */
export function parseType(value: string | undefined, hint: string): FileType | undefined {
  if (value === undefined) return undefined;
  const type = FILE_TYPES.find((t) => t === value);
  if (type === undefined) throw new UsageError(`--type is ${FILE_TYPES.join(' or ')}, not ${value}`, hint);
  return type;
}

/** A number of generations to keep (`state keep N`): a whole number from 1 to MAX_KEEP_GENERATIONS (9999). */
export function parseKeep(value: string | undefined, hint: string): number | undefined {
  if (value === undefined) return undefined;
  const keep = /^[1-9]\d{0,3}$/.test(value) ? Number(value) : NaN;
  if (Number.isNaN(keep) || keep > MAX_KEEP_GENERATIONS) {
    throw new UsageError(`N is a whole number from 1 to ${MAX_KEEP_GENERATIONS}, not ${value}`, hint);
  }
  return keep;
}

/**
 * `sync --keep` and `serve --keep-generations` are gone: a value per process let a shell's capture prune what serve
 * was told to keep. Refused with the command that sets the database's value, so an old unit file fails loudly.
 */
export function refuseKeepFlag(value: string | undefined, flag: string): void {
  if (value === undefined) return;
  throw new UsageError(
    `--${flag} is gone: how many generations are kept is the database's, one value for every process`,
    `set it once with \`hostfiles state keep ${value}\``,
  );
}

/** The flag spec of a removed --keep flag: still parsed, to be refused with the way; not in help. */
export const removedKeepFlag = (name: string): FlagSpec => ({
  name,
  value: 'N',
  help: 'removed: see `hostfiles state keep`',
  hidden: true,
});

export const STATE_COMMANDS: readonly Command[] = [
  {
    words: ['state', 'history'],
    args: [{ name: 'VM', arity: 'one' }],
    flags: [{ name: 'type', value: 'TYPE', help: `only this type: ${FILE_TYPES.join(' or ')}` }],
    summary: "list the generations kept of a VM's states: number, digest, size, source, host, when",
    details: [
      "Every capture (sync, adopt --backup, a file write onto the VM's current host) of a state that differs from the",
      'newest generation of its type is a new generation, numbered per VM and type, never reused; the last N are',
      'kept (`hostfiles state keep`). `hostfiles restore VM --generation G` writes one back.',
    ].join('\n'),
    async run(ctx, input) {
      const type = parseType(input.string('type'), 'see `hostfiles state history --help`');
      const store = await ctx.store();
      const vm = await findVm(store, firstArg(input));
      const generations = await store.listGenerations(vm.uuid, type);
      const names = await loadNames(store);
      const host = (uuid: string | null): string => (uuid === null ? '-' : names.host(uuid));
      ctx.print(
        {
          vmUuid: vm.uuid,
          vmName: vm.name,
          generations: generations.map((g) => ({ ...g, hostName: g.hostUuid === null ? null : host(g.hostUuid) })),
        },
        () =>
          generations.length === 0
            ? `VM ${vm.name} has no generations: sync it`
            : table(
                ['TYPE', 'GENERATION', 'KIND', 'SIZE', 'SHA256', 'SOURCE', 'HOST', 'CAPTURED'],
                generations.map((g) => [
                  g.type,
                  String(g.generation),
                  g.kind,
                  String(g.size),
                  g.sha256.slice(0, 16),
                  g.source,
                  host(g.hostUuid),
                  formatTime(g.capturedAt),
                ]),
              ),
      );
    },
  },
  {
    words: ['state', 'keep'],
    args: [{ name: 'N', arity: 'optional' }],
    flags: [],
    summary: "show, or set, how many generations of each VM's state of each type are kept",
    details: [
      `One value in the database, for every process and every flow that captures (default ${DEFAULT_KEEP_GENERATIONS}): a sync, a`,
      'file write or a resumed operation of any controller or shell prunes to it. N: a whole number from 1 to',
      `${MAX_KEEP_GENERATIONS}. Setting a lower N drops nothing at once: each VM's next capture of a type drops its`,
      'generations beyond the last N (the newest is never dropped), so a value set too low can be raised again before.',
    ].join('\n'),
    async run(ctx, input) {
      const keep = parseKeep(input.args[0], KEEP_HINT);
      const store = await ctx.store();
      const previous = await store.getKeepGenerations();
      if (keep === undefined) {
        ctx.print({ keepGenerations: previous }, () => `the last ${previous} generations of each type are kept`);
        return;
      }
      await store.setKeepGenerations(keep);
      ctx.print(
        { keepGenerations: keep, previous },
        () =>
          `the last ${keep} generations of each type are kept (was ${previous})` +
          (keep < previous ? ": each VM's next capture of a type drops the older ones" : ''),
      );
    },
  },
];

// `hostfiles state history`: the generations kept of a VM's states, newest first.
import { FILE_TYPES, type FileType } from '@hostfiles/shared/core';
import { firstArg, type Command } from './command.js';
import { UsageError } from './errors.js';
import { findVm, loadNames } from './lookup.js';
import { formatTime, table } from './output.js';

/** The value of --type, checked: TpmState or NvRam. */
export function parseType(value: string | undefined, hint: string): FileType | undefined {
  if (value === undefined) return undefined;
  const type = FILE_TYPES.find((t) => t === value);
  if (type === undefined) throw new UsageError(`--type is ${FILE_TYPES.join(' or ')}, not ${value}`, hint);
  return type;
}

/** A number of generations to keep (`--keep`, `--keep-generations`): a whole number from 1 to 9999. */
export function parseKeep(value: string | undefined, flag: string, hint: string): number | undefined {
  if (value === undefined) return undefined;
  const keep = /^[1-9]\d{0,3}$/.test(value) ? Number(value) : NaN;
  if (Number.isNaN(keep)) throw new UsageError(`--${flag} is a whole number from 1 to 9999, not ${value}`, hint);
  return keep;
}

export const STATE_COMMANDS: readonly Command[] = [
  {
    words: ['state', 'history'],
    args: [{ name: 'VM', arity: 'one' }],
    flags: [{ name: 'type', value: 'TYPE', help: `only this type: ${FILE_TYPES.join(' or ')}` }],
    summary: "list the generations kept of a VM's states: number, digest, size, source, host, when",
    details: [
      "Every capture (sync, adopt --backup, a file write onto the VM's current host) of a state that differs from the",
      'newest generation of its type is a new generation, numbered per VM and type, never reused; the last 5 are',
      'kept. `hostfiles restore VM --generation G` writes one back.',
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
];

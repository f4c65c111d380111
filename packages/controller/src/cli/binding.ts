// `hostfiles binding list`: the key bindings of TPMs, with their state; a `detaching` one outlives its TPM row until
// the last of the TPM's state is confirmed gone from every host.
import { KEY_BINDING_STATES, type KeyBindingState } from '../store/types.js';
import type { Command } from './command.js';
import { UsageError } from './errors.js';
import { loadNames } from './lookup.js';
import { formatTime, table } from './output.js';

const isBindingState = (value: string): value is KeyBindingState =>
  (KEY_BINDING_STATES as readonly string[]).includes(value);

export const BINDING_COMMANDS: readonly Command[] = [
  {
    words: ['binding', 'list'],
    args: [],
    flags: [{ name: 'state', value: 'STATE', help: `only bindings in this state: ${KEY_BINDING_STATES.join(' or ')}` }],
    summary: "list the TPMs' key bindings: TPM, VM, key provider, state, created, and what holds a detaching one",
    details: [
      "A binding is attached while its TPM exists. A removed TPM's binding stays detaching while any deletion of its",
      'state is pending on a host (PENDING counts them; `hostfiles pending list` says where and why), and goes once',
      'the last is confirmed. TPM says whether the TPM row still exists: a detaching binding of a TPM gone with',
      'nothing pending is settled by `hostfiles resume`.',
    ].join('\n'),
    async run(ctx, input) {
      const state = input.string('state');
      if (state !== undefined && !isBindingState(state)) {
        throw new UsageError(
          `--state is ${KEY_BINDING_STATES.join(' or ')}, not ${state}`,
          'see `hostfiles binding list --help`',
        );
      }
      const store = await ctx.store();
      const bindings = await store.listKeyBindings(state === undefined ? {} : { state });
      const tpms = new Set((await store.listTpmsByVms([...new Set(bindings.map((b) => b.vmUuid))])).map((t) => t.uuid));
      const pending = new Map<string, number>();
      for (const row of await store.listPendingDeletions()) {
        if (row.tpmUuid !== null) pending.set(row.tpmUuid, (pending.get(row.tpmUuid) ?? 0) + 1);
      }
      const names = await loadNames(store);
      const rows = bindings.map((b) => ({
        ...b,
        vmName: names.vm(b.vmUuid),
        tpmExists: tpms.has(b.tpmUuid),
        pendingDeletions: pending.get(b.tpmUuid) ?? 0,
      }));
      ctx.print(rows, () =>
        rows.length === 0
          ? 'no key bindings'
          : table(
              ['TPM', 'VM', 'KEY PROVIDER', 'STATE', 'CREATED', 'TPM ROW', 'PENDING'],
              rows.map((b) => [
                b.tpmUuid,
                b.vmName,
                b.keyProvider,
                b.state,
                formatTime(b.createdAt),
                b.tpmExists ? 'present' : 'gone',
                String(b.pendingDeletions),
              ]),
            ),
      );
    },
  },
];

// The outbox of host-side deletions: `hostfiles pending list` and `hostfiles retry`.
import type { Command } from './command.js';
import { namePending } from '../store/types.js';
import { loadNames } from './lookup.js';
import { formatTime, table } from './output.js';
import { formatRetry } from './report.js';

export const PENDING_COMMANDS: readonly Command[] = [
  {
    words: ['pending', 'list'],
    args: [],
    flags: [],
    summary: 'list the deletions not yet confirmed by their host, with attempts and the last error',
    async run(ctx) {
      const store = await ctx.store();
      const rows = await store.listPendingDeletions();
      const names = await loadNames(store);
      const listed = rows.map((row) => ({ ...namePending(row, names), hostName: names.host(row.hostUuid) }));
      ctx.print(listed, () =>
        listed.length === 0
          ? 'nothing pending'
          : table(
              ['HOST', 'TYPE', 'PATH', 'VM', 'ATTEMPTS', 'NEXT ATTEMPT', 'LAST ERROR'],
              listed.map((row) => [
                row.hostName,
                row.type,
                row.path,
                `${row.vmName ?? row.vmUuid}${row.vmDestroyed ? ' (destroyed)' : ''}`,
                String(row.attempts),
                formatTime(row.nextAttemptAt),
                row.lastError ?? '',
              ]),
            ),
      );
    },
  },
  {
    words: ['retry'],
    args: [],
    flags: [],
    summary: 'one pass over every pending deletion, due or not; print what is gone and what is still pending',
    details: [
      'One command per host. Confirmed files leave the outbox and the key bindings they held back are',
      'detached; the rest stay pending with a later next attempt. Still pending is not a failure: exit 0.',
    ].join('\n'),
    async run(ctx) {
      const { retryPendingDeletions } = await import('../flows/index.js');
      const deps = await ctx.flows();
      const report = await retryPendingDeletions(deps, { all: true });
      ctx.print(report, () => formatRetry(report));
    },
  },
];

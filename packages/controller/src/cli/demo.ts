// `hostfiles demo` and `hostfiles resume`.
import { runDemo } from '../demo/demo.js';
import { resumeOperations } from '../flows/index.js';
import type { Command } from './command.js';
import { CliError } from './errors.js';

export const DEMO_COMMANDS: readonly Command[] = [
  {
    words: ['demo'],
    args: [],
    flags: [],
    summary: 'three local agents, VMs with TPMs and NVRAM, a host down during removal, the outbox drained',
    details:
      'Uses its own temporary directory, database and key (not --db or --key) and removes them at the end.\nExits 1 when the final state on disk is not the expected one.',
    async run(ctx) {
      const result = await runDemo((line) => {
        ctx.io.stdout(`${line}\n`);
      });
      if (!result.ok) throw new CliError('the demo ended in the wrong state (see above)');
    },
  },
  {
    words: ['resume'],
    args: [],
    flags: [],
    summary: 'resume or safely repeat every operation a stopped controller left unfinished',
    async run(ctx) {
      const report = await resumeOperations(await ctx.flows());
      ctx.print(report, () =>
        [
          `resumed: ${report.resumed.length}`,
          `ended as failed: ${report.failed.length}`,
          `unknown kinds left running: ${report.unknown.length}`,
          `errors: ${report.errors.length}`,
          `key bindings detached: ${report.detached.length}`,
        ].join('\n'),
      );
      if (report.errors.length > 0) throw new CliError(`${report.errors.length} operations could not be resumed`);
    },
  },
];

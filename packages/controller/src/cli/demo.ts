// `hostfiles demo` and `hostfiles resume`.
import type { ResumeReport } from '../flows/index.js';
import type { Command } from './command.js';
import { CliError, UsageError } from './errors.js';

export const DEMO_COMMANDS: readonly Command[] = [
  {
    words: ['demo'],
    args: [],
    flags: [],
    summary: 'three local agents, VMs with TPMs and NVRAM, a host down during removal, the outbox drained',
    details:
      'Uses its own temporary directory, database and key (not --db or --key) and removes them at the end, also when\nstopped by SIGINT or SIGTERM (it stops its agents first; exit 1).\nExits 1 when the final state on disk is not the expected one.',
    async run(ctx) {
      // Its lines are a story for a person, not a document: --json promises JSON alone on stdout.
      if (ctx.json) throw new UsageError('demo prints lines for a person to read; it has no --json output');
      const { runDemo } = await import('../demo/demo.js');
      const result = await runDemo((line) => {
        ctx.io.stdout(`${line}\n`);
      }, ctx.io.stopSignal?.());
      if (result.interrupted !== undefined) {
        throw new CliError(
          `the demo was stopped (${result.interrupted}): its agents are stopped, its directory removed`,
        );
      }
      if (!result.ok) throw new CliError('the demo ended in the wrong state (see above)');
    },
  },
  {
    words: ['resume'],
    args: [],
    flags: [],
    summary: 'resume or safely repeat every operation a stopped controller left unfinished',
    async run(ctx) {
      const { resumeOperations } = await import('../flows/index.js');
      const report = await resumeOperations(await ctx.flows());
      ctx.print(report, () => resumeText(report));
      if (report.errors.length > 0) throw new CliError(`${report.errors.length} operations could not be resumed`);
    },
  },
];

/** The text of `hostfiles resume`: each count, and under the failed and the errors which operations and why. */
export function resumeText(report: ResumeReport): string {
  return [
    `resumed: ${report.resumed.length}`,
    `ended as failed: ${report.failed.length}`,
    ...report.failed.map((id) => `  ${id}`),
    `unknown kinds left running: ${report.unknown.length}`,
    ...report.unknown.map((id) => `  ${id}`),
    `errors: ${report.errors.length}`,
    ...report.errors.map((error) => `  ${error.id}: ${error.message}`),
    `key bindings detached: ${report.detached.length}`,
  ].join('\n');
}

// `hostfiles tpm add|remove`.
import { firstArg, type Command } from './command.js';
import { formatRemoval } from './report.js';

export const DEFAULT_KEY_PROVIDER = 'default';

export const TPM_COMMANDS: readonly Command[] = [
  {
    words: ['tpm', 'add'],
    args: [{ name: 'VM', arity: 'one' }],
    flags: [
      {
        name: 'key-provider',
        value: 'P',
        help: `the key provider that protects the TPM's state (default: ${DEFAULT_KEY_PROVIDER})`,
      },
    ],
    summary: 'give a VM a TPM, bound to a key provider',
    async run(ctx, input) {
      const { addTpm } = await import('../flows/index.js');
      const deps = await ctx.flows();
      const provider = input.string('key-provider') ?? DEFAULT_KEY_PROVIDER;
      const { tpm, binding } = await addTpm(deps, firstArg(input), provider);
      ctx.print(
        { tpm, binding },
        () => `added TPM ${tpm.uuid} to VM ${firstArg(input)}; key provider ${binding.keyProvider}`,
      );
    },
  },
  {
    words: ['tpm', 'remove'],
    args: [{ name: 'VM', arity: 'many' }],
    flags: [
      {
        name: 'force',
        help: 'go ahead although a VM runs (its swtpm holds the state): the deletion waits until swtpm stops',
      },
      { name: 'dry-run', help: 'print what would be deleted (every file "planned"); change nothing, send nothing' },
    ],
    summary: 'remove the TPMs of one or more VMs in one flow; print what is gone and what is pending',
    details: [
      'All files are grouped per host: N VMs on H hosts cost at most H commands. Every VM must have a TPM;',
      'otherwise nothing is done. TPM state is deleted on every host the VM has lived on; NVRAM too when',
      'the VM boots UEFI without secure boot (with secure boot on, NVRAM is never touched).',
      'A file whose host is down or refuses stays in the pending deletions with the reason, and the key',
      'binding stays "detaching" until the last one is confirmed. That is a normal outcome: exit 0.',
      'A VM whose swtpm (or QEMU, for NVRAM) runs is refused before anything is done, unless --force;',
      'the agents never delete a state whose lock is held: such a deletion stays pending (busy) until it is free.',
      '--dry-run prints the same report (with "dryRun": true): every file that would be deleted as "planned", the',
      'commands it would take, each binding as it would end were every deletion confirmed. Nothing is changed or',
      'journaled and no host is asked (a running VM is not refused: only the real run probes for that). Exit 0.',
    ].join('\n'),
    async run(ctx, input) {
      const { planRemoveTpms, removeTpms } = await import('../flows/index.js');
      const deps = await ctx.flows();
      if (input.bool('dry-run')) {
        const plan = await planRemoveTpms(deps, [...new Set(input.args)]);
        ctx.print(plan, () => formatRemoval({ ...plan, operationId: '', pending: [] }, true));
        return;
      }
      // The same VM named twice is one removal.
      const report = await removeTpms(deps, [...new Set(input.args)], undefined, { force: input.bool('force') });
      ctx.print(report, () => formatRemoval(report));
    },
  },
];

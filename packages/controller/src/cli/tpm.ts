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
    ].join('\n'),
    async run(ctx, input) {
      const { removeTpms } = await import('../flows/index.js');
      const deps = await ctx.flows();
      // The same VM named twice is one removal.
      const report = await removeTpms(deps, [...new Set(input.args)], undefined, { force: input.bool('force') });
      ctx.print(report, () => formatRemoval(report));
    },
  },
];

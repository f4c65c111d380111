// `hostfiles vm add|move|destroy|list`.
import type { NewVmInput } from '../flows/index.js';
import { isStoreError } from '../store/errors.js';
import type { KeyBinding, Store, Vm } from '../store/index.js';
import { firstArg, type Command } from './command.js';
import { CliError, UsageError } from './errors.js';
import { loadNames } from './lookup.js';
import { plural, table } from './output.js';
import { filesTable } from './report.js';

export const VM_COMMANDS: readonly Command[] = [
  {
    words: ['vm', 'add'],
    args: [{ name: 'NAME', arity: 'one' }],
    flags: [
      { name: 'host', value: 'HOST', required: true, help: 'the host the VM lives on (name or uuid)' },
      { name: 'uuid', value: 'UUID', help: "libvirt's domain uuid (`virsh domuuid`); default: a new random one" },
      { name: 'uefi', help: 'the VM boots UEFI (default: legacy BIOS)' },
      { name: 'secure-boot', help: 'secure boot is on (needs --uefi); its NVRAM is then never deleted with a TPM' },
    ],
    summary: 'add a VM on a host',
    async run(ctx, input) {
      const name = firstArg(input);
      const host = input.required('host');
      const uefi = input.bool('uefi');
      const secureBoot = input.bool('secure-boot');
      if (secureBoot && !uefi) throw new UsageError('--secure-boot needs --uefi', 'see `hostfiles vm add --help`');
      const uuid = input.string('uuid')?.toLowerCase();
      const spec: NewVmInput = {
        name,
        host,
        bootMode: uefi ? 'UEFI' : 'Legacy',
        secureBoot,
        ...(uuid === undefined ? {} : { uuid }),
      };
      const { addVm } = await import('../flows/index.js');
      const deps = await ctx.flows();
      let vm: Vm;
      try {
        vm = await addVm(deps, spec);
      } catch (error) {
        if (isStoreError(error, 'conflict'))
          throw new CliError(`a VM named ${name}${uuid === undefined ? '' : ` or with uuid ${uuid}`} exists already`, {
            cause: error,
          });
        throw error;
      }
      ctx.print(
        vm,
        () => `added VM ${vm.name} (${vm.uuid}) on ${host}: ${vm.bootMode}${vm.secureBoot ? ', secure boot' : ''}`,
      );
    },
  },
  {
    words: ['vm', 'move'],
    args: [{ name: 'VM', arity: 'one' }],
    flags: [{ name: 'host', value: 'HOST', required: true, help: 'the host the VM lives on now' }],
    summary: 'record that a VM now lives on another host (libvirt moved it); nothing on any host changes',
    details: [
      "sync then reads the VM's state from its new host. Its state on the old host stays recorded (and is deleted",
      'with its TPM, or by `vm destroy`); `restore VM` writes its backups onto the new host if libvirt did not',
      'carry the state there.',
    ].join('\n'),
    async run(ctx, input) {
      const { moveVm } = await import('../flows/index.js');
      const report = await moveVm(await ctx.flows(), firstArg(input), input.required('host'));
      ctx.print(report, () =>
        [
          `VM ${report.vmName} now lives on ${report.to.hostName}${report.from === null ? '' : ` (was ${report.from.hostName})`}`,
          ...report.elsewhere.map((f) => `  still recorded on ${f.hostName}: ${f.type} ${f.path}`),
        ].join('\n'),
      );
    },
  },
  {
    words: ['vm', 'recover'],
    args: [{ name: 'VM', arity: 'one' }],
    flags: [
      { name: 'to', value: 'HOST', required: true, help: 'the host the VM is recovered onto' },
      { name: 'force', help: 'write over state hostfiles does not know at a new path on that host' },
      {
        name: 'host-lost',
        help: "give the VM's host up though something answers at its address (its agent down, a reinstalled host, a new key, a hung agent)",
      },
    ],
    summary: "after its host was lost: restore a VM's newest generations onto another host and move it there",
    details: [
      "The VM's newest generation of each type is written onto HOST (libvirt's layout below its roots, or the VM's",
      'recorded path there); then, in one transaction, the VM moves to HOST (its epoch rises) and its states on every',
      'other host are forgotten and put in the outbox: the lost host, once back, has its stale copy deleted by the',
      'retry and is never captured from. Journaled (vm.recover); a controller killed in it is finished by `resume`.',
      'If the write does not land, nothing moves: exit 1. HOST must be another than the one the VM lives on (its',
      "state there may be newer than any backup): to write its backups back where it is, run `restore`. The VM's",
      'host is asked first, as `host check` asks: unless it cannot be reached at all (no route, a name that no',
      'longer resolves; no answer in time, nor to a bare TCP connect after it), it is not lost and nothing is done. A',
      'refused connection is not lost: the machine is up, only its agent is down, and the VM may still run there.',
      '--host-lost gives the host up all the same.',
    ].join('\n'),
    async run(ctx, input) {
      const { recoverVm } = await import('../flows/index.js');
      const report = await recoverVm(await ctx.flows(), firstArg(input), input.required('to'), {
        force: input.bool('force'),
        hostLost: input.bool('host-lost'),
      });
      ctx.print(report, () =>
        [
          ...report.files.map((f) => `${f.status} ${f.type} ${f.path}`),
          ...report.generations.map((g) => `restored ${g.type} generation ${g.generation}`),
          ...report.scheduled.map((s) => `scheduled for deletion: ${s.type} ${s.path} (${s.hostUuid})`),
          report.epoch === null
            ? `VM ${report.vmName} not recovered: ${report.error ?? 'a state was not written'}`
            : `VM ${report.vmName} now lives on ${report.to.hostName} at epoch ${report.epoch}`,
        ].join('\n'),
      );
      if (report.epoch === null) throw new CliError(`VM ${report.vmName} was not recovered (see the report)`);
    },
  },
  {
    words: ['vm', 'destroy'],
    args: [{ name: 'VM', arity: 'one' }],
    flags: [
      { name: 'force', help: 'go ahead although the VM runs: deletions of states in use wait until released' },
      { name: 'dry-run', help: 'print what would be deleted (every file "planned"); change nothing, send nothing' },
    ],
    summary: 'delete all files of a VM (both types, every host), then its rows; unconfirmed files wait in the outbox',
    details: [
      '--dry-run prints the same report (with "dryRun": true): every file that would be deleted, per host, as',
      '"planned", the commands it would take, and the TPM binding as it would end were every deletion confirmed.',
      'Nothing is changed or journaled and no host is asked (so a running VM is not refused: only the real run',
      'probes for that). Exit 0.',
    ].join('\n'),
    async run(ctx, input) {
      const { destroyVm, planDestroyVm } = await import('../flows/index.js');
      if (input.bool('dry-run')) {
        const plan = await planDestroyVm(await ctx.flows(), firstArg(input));
        ctx.print(plan, () =>
          [
            `dry run: destroying VM ${plan.vmName} (${plan.vmUuid}) would send ${plural(plan.commands, 'command')}`,
            ...plan.hosts.flatMap((host) =>
              host.files.map(
                (file) => `  ${host.hostName}  ${file.status.padEnd(11)} ${file.type.padEnd(8)} ${file.path}`,
              ),
            ),
            plan.tpm === null ? 'no TPM' : `TPM ${plan.tpm.tpmUuid}: its key binding goes once every file is gone`,
            'nothing was changed',
          ].join('\n'),
        );
        return;
      }
      const report = await destroyVm(await ctx.flows(), firstArg(input), undefined, { force: input.bool('force') });
      ctx.print(report, () =>
        [
          `destroyed VM ${report.vmName} (${report.vmUuid}): ${report.commands} commands sent`,
          filesTable(report.hosts),
          report.tpm === null ? 'no TPM' : `TPM ${report.tpm.tpmUuid}: key binding ${report.tpm.binding}`,
          `${report.pending.length} deletions pending${report.pending.length > 0 ? ' (see `hostfiles pending list`; `hostfiles retry` tries them now)' : ''}`,
        ].join('\n'),
      );
    },
  },
  {
    words: ['vm', 'list'],
    args: [],
    flags: [],
    summary: 'list the VMs, their host, boot mode and TPM',
    async run(ctx) {
      const store = await ctx.store();
      const names = await loadNames(store);
      const vms = await Promise.all((await store.listVms()).map((vm) => withTpm(store, vm)));
      ctx.print(
        vms.map((vm) => ({ ...vm, hostName: vm.hostUuid === null ? null : names.host(vm.hostUuid) })),
        () =>
          vms.length === 0
            ? 'no VMs'
            : table(
                ['NAME', 'HOST', 'BOOT', 'SECURE BOOT', 'TPM', 'KEY PROVIDER', 'UUID'],
                vms.map((vm) => [
                  vm.name,
                  names.host(vm.hostUuid),
                  vm.bootMode,
                  vm.secureBoot ? 'on' : 'off',
                  vm.tpm === null ? '-' : vm.tpm.uuid,
                  bindingText(vm.tpm?.binding ?? null),
                  vm.uuid,
                ]),
              ),
      );
    },
  },
];

interface VmWithTpm extends Vm {
  readonly tpm: { readonly uuid: string; readonly binding: KeyBinding | null } | null;
}

async function withTpm(store: Store, vm: Vm): Promise<VmWithTpm> {
  const tpm = await store.getTpmByVm(vm.uuid);
  if (tpm === null) return { ...vm, tpm: null };
  return { ...vm, tpm: { uuid: tpm.uuid, binding: await store.getKeyBinding(tpm.uuid) } };
}

const bindingText = (binding: KeyBinding | null): string =>
  binding === null ? '-' : `${binding.keyProvider} (${binding.state})`;

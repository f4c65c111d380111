// `hostfiles file write|list`.
import { FILE_TYPES, type FileType } from '@hostfiles/shared/core';
import type { VmHostFile } from '../store/index.js';
import { ABS_PATH } from './args.js';
import type { Command } from './command.js';
import { UsageError } from './errors.js';
import { findVm, loadNames } from './lookup.js';
import { formatTime, table, visible } from './output.js';

const isFileType = (value: string): value is FileType => (FILE_TYPES as readonly string[]).includes(value);

export const FILE_COMMANDS: readonly Command[] = [
  {
    words: ['file', 'write'],
    args: [{ name: 'VM', arity: 'one' }],
    flags: [
      { name: 'type', value: 'TYPE', required: true, help: FILE_TYPES.join(' or ') },
      {
        name: 'path',
        value: ABS_PATH,
        required: true,
        help: "the absolute path on the host, below the agent's root of TYPE",
      },
      {
        name: 'from',
        value: 'LOCAL',
        required: true,
        help: "a local directory written whole (a TPM state as libvirt keeps it: a copy of a VM's <uuid>/ with tpm2/ in it; its .lock left out), or a local file (an NVRAM store; or a TPM state swtpm keeps in one file, its file:// backend)",
      },
      { name: 'host', value: 'HOST', help: "the host to write on (default: the VM's current host)" },
      { name: 'force', help: 'write over state hostfiles does not know at a path the VM does not hold yet' },
    ],
    summary: "write a VM's TPM state (a directory) or NVRAM file onto a host through its agent, and record it",
    details: [
      "Checked before anything is sent: a path that is, is inside or contains another VM's state is refused; a",
      'path the VM does not hold yet must be empty on the host unless --force (adopt state libvirt made instead).',
      "A directory replaces the whole state at PATH at once: a crash leaves the old state or the new one. The VM's",
      'earlier path of that type on that host is deleted through the outbox when the new one is recorded; a',
      'pending deletion at PATH is cancelled. A state in use by a running swtpm or QEMU is refused (busy).',
    ].join('\n'),
    async run(ctx, input) {
      const [vm = ''] = input.args;
      const type = input.required('type');
      if (!isFileType(type))
        throw new UsageError(`--type is ${FILE_TYPES.join(' or ')}, not ${type}`, 'see `hostfiles file write --help`');
      const path = input.required('path');
      const { readLocalState } = await import('./local-state.js');
      const { writeFile } = await import('../flows/index.js');
      const state = readLocalState(input.required('from'), type);
      const host = input.string('host');
      const deps = await ctx.flows();
      const file = await writeFile(deps, {
        vm,
        type,
        path,
        state,
        force: input.bool('force'),
        ...(host === undefined ? {} : { host }),
      });
      // Not libvirt's name for this VM's state: libvirt uses it only where the domain's XML names it. Said, not
      // refused (the XML may well name it); asked of the agent after the write, and nothing said when it can't be.
      const { libvirtNote } = await import('./libvirt-note.js');
      const note = await libvirtNote(deps, file).catch(() => undefined);
      if (note !== undefined) ctx.io.stderr(`hostfiles: note: ${visible(note)}\n`);
      const names = await loadNames(deps.store);
      ctx.print({ ...file, vmName: names.vm(file.vmUuid), hostName: names.host(file.hostUuid) }, () =>
        [
          `wrote ${file.type} ${file.kind === 'dir' ? 'directory ' : ''}${file.path} on ${names.host(file.hostUuid)} ` +
            `(${file.size} bytes, ${file.sha256}); operation ${file.operationId}`,
          ...(file.replaced === undefined ? [] : [`its earlier state ${file.replaced} is pending deletion`]),
        ].join('\n'),
      );
    },
  },
  {
    words: ['file', 'list'],
    args: [{ name: 'VM', arity: 'optional' }],
    flags: [],
    summary: "list the files recorded on hosts: one VM's, or every VM's",
    async run(ctx, input) {
      const store = await ctx.store();
      const [vmRef] = input.args;
      let files: VmHostFile[];
      if (vmRef === undefined) {
        const hosts = await store.listHosts();
        files = (await Promise.all(hosts.map((host) => store.listFilesByHost(host.uuid)))).flat();
      } else {
        files = await store.listFilesByVm((await findVm(store, vmRef)).uuid);
      }
      const names = await loadNames(store);
      ctx.print(
        files.map((file) => ({ ...file, vmName: names.vm(file.vmUuid), hostName: names.host(file.hostUuid) })),
        () =>
          files.length === 0
            ? 'no files'
            : table(
                ['VM', 'HOST', 'TYPE', 'KIND', 'PATH', 'SIZE', 'SHA256', 'LAST SYNC'],
                files.map((f) => [
                  names.vm(f.vmUuid),
                  names.host(f.hostUuid),
                  f.type,
                  f.kind,
                  f.path,
                  String(f.size),
                  f.sha256.slice(0, 16),
                  formatTime(f.lastSyncAt),
                ]),
              ),
      );
    },
  },
];

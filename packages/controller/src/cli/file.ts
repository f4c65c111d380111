// `hostfiles file write|list`.
import { readFileSync } from 'node:fs';
import { FILE_TYPES, type FileType } from '@hostfiles/shared';
import { writeFile } from '../flows/index.js';
import type { VmHostFile } from '../store/index.js';
import type { Command } from './command.js';
import { CliError, UsageError } from './errors.js';
import { findVm, loadNames } from './lookup.js';
import { formatTime, table } from './output.js';

const isFileType = (value: string): value is FileType => (FILE_TYPES as readonly string[]).includes(value);

export const FILE_COMMANDS: readonly Command[] = [
  {
    words: ['file', 'write'],
    args: [{ name: 'VM', arity: 'one' }],
    flags: [
      { name: 'type', value: 'TYPE', required: true, help: FILE_TYPES.join(' or ') },
      {
        name: 'path',
        value: 'ABS',
        required: true,
        help: "the absolute path on the host, below the agent's root of TYPE",
      },
      { name: 'from', value: 'LOCALFILE', required: true, help: 'the local file whose content is written' },
      { name: 'host', value: 'HOST', help: "the host to write on (default: the VM's current host)" },
    ],
    summary: "write a VM's TPM state or NVRAM file onto a host through its agent, and record it",
    details: 'A pending deletion at the same host and path is cancelled in the same transaction.',
    async run(ctx, input) {
      const [vm = ''] = input.args;
      const type = input.required('type');
      if (!isFileType(type))
        throw new UsageError(`--type is ${FILE_TYPES.join(' or ')}, not ${type}`, 'see `hostfiles file write --help`');
      const path = input.required('path');
      const from = input.required('from');
      const host = input.string('host');
      let content: Buffer;
      try {
        content = readFileSync(from);
      } catch (error) {
        throw new CliError(`cannot read ${from}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
      }
      const deps = await ctx.flows();
      const file = await writeFile(deps, { vm, type, path, content, ...(host === undefined ? {} : { host }) });
      const names = await loadNames(deps.store);
      ctx.print(
        { ...file, vmName: names.vm(file.vmUuid), hostName: names.host(file.hostUuid) },
        () => `wrote ${file.type} ${file.path} on ${names.host(file.hostUuid)} (${file.size} bytes, ${file.sha256})`,
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
                ['VM', 'HOST', 'TYPE', 'PATH', 'SIZE', 'SHA256', 'LAST SYNC'],
                files.map((f) => [
                  names.vm(f.vmUuid),
                  names.host(f.hostUuid),
                  f.type,
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

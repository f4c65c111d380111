// What `file write` says when a state is not where libvirt looks for it by default.
import type { FileType } from '@hostfiles/shared/core';
import { libvirtPaths, type FlowDeps } from '../flows/index.js';

/** What libvirt is told where to find a state it does not look for by default: the domain XML's element for it. */
const NAMED_BY: Readonly<Record<FileType, string>> = {
  TpmState:
    "the domain's <tpm><backend type='emulator'><source type='dir' path='…'/> (a recent libvirt; older ones never)",
  NvRam: "the domain's <os><nvram>",
};

/**
 * A sentence when `file.path` is not libvirt's default path for the VM's state of its type below the host's roots
 * (`<TpmState root>/<vm uuid>`, `<NvRam root>/<name>_VARS.fd`), else undefined. Asks the agent its roots (a stat of
 * nothing); throws when it cannot be asked.
 */
export async function libvirtNote(
  deps: FlowDeps,
  file: { readonly vmUuid: string; readonly hostUuid: string; readonly type: FileType; readonly path: string },
): Promise<string | undefined> {
  const [vm, host] = await Promise.all([deps.store.getVm(file.vmUuid), deps.store.getHost(file.hostUuid)]);
  if (vm === null || host === null) return undefined;
  const { roots } = await deps.agents.send(host, 'files.stat', { files: [] });
  const expected = libvirtPaths(vm, roots)[file.type];
  if (expected === file.path) return undefined;
  if (expected === undefined) {
    return `VM ${vm.name} boots Legacy (BIOS): libvirt gives it no NVRAM, and uses ${file.path} only if the VM is made UEFI and ${NAMED_BY.NvRam} names it`;
  }
  return `libvirt looks for VM ${vm.name}'s ${file.type} at ${expected}; ${file.path} is used only where ${NAMED_BY[file.type]} names it`;
}

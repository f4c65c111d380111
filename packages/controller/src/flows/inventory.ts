// Adding hosts, VMs and TPMs, and writing a VM's file onto its host.
import { createHash, randomUUID } from 'node:crypto';
import { isValidRoot, writeOp, type FileType } from '@hostfiles/shared';
import type { BootMode, Host, TpmWithBinding, Vm, VmHostFile } from '../store/index.js';
import { FlowError, type FlowDeps } from './deps.js';
import { settleBinding } from './remove-tpm.js';
import { resolveVm } from './resolve.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export async function resolveHost(deps: FlowDeps, ref: string): Promise<Host> {
  const host = UUID.test(ref) ? await deps.store.getHost(ref) : await deps.store.getHostByName(ref);
  if (host === null) throw new FlowError('not_found', `no host ${ref}`);
  return host;
}

/** Fetches the agent's info and pins its key and host uuid. */
export async function addHost(deps: FlowDeps, input: { readonly name: string; readonly url: string }): Promise<Host> {
  let url: URL;
  try {
    url = new URL(input.url);
  } catch {
    throw new FlowError('bad_input', `${input.url} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new FlowError('bad_input', 'an agent URL is http or https');
  const base = url.origin;
  const info = await deps.agents.info(base);
  return deps.store.addHost({
    uuid: info.hostUuid,
    name: input.name,
    url: base,
    publicKey: info.publicKey,
    keyId: info.keyId,
    state: 'Connected',
    lastSeenAt: deps.now(),
  });
}

/** A health check: Connected when the agent answers with the pinned key and uuid; a changed key is refused loudly. */
export async function checkHost(deps: FlowDeps, host: Host): Promise<Host['state']> {
  let state: Host['state'] = 'Disconnected';
  try {
    const info = await deps.agents.info(host.url);
    if (info.publicKey !== host.publicKey || info.hostUuid !== host.uuid) {
      await deps.store.setHostState(host.uuid, 'Disconnected');
      throw new FlowError(
        'host_key_changed',
        `host ${host.name} answers with another key or uuid than the one pinned: refusing it`,
      );
    }
    state = 'Connected';
  } catch (error) {
    if (error instanceof FlowError) throw error;
  }
  await deps.store.setHostState(host.uuid, state, state === 'Connected' ? deps.now() : undefined);
  return state;
}

export interface NewVmInput {
  readonly name: string;
  readonly host: string;
  readonly bootMode: BootMode;
  readonly secureBoot: boolean;
}

export async function addVm(deps: FlowDeps, input: NewVmInput): Promise<Vm> {
  const host = await resolveHost(deps, input.host);
  if (input.bootMode === 'Legacy' && input.secureBoot) throw new FlowError('bad_input', 'secure boot needs UEFI');
  return deps.store.addVm({
    uuid: randomUUID(),
    name: input.name,
    hostUuid: host.uuid,
    bootMode: input.bootMode,
    secureBoot: input.secureBoot,
  });
}

export async function addTpm(deps: FlowDeps, vmRef: string, keyProvider: string): Promise<TpmWithBinding> {
  const vm = await resolveVm(deps.store, vmRef);
  return deps.queue.run([vm.uuid], async () => {
    if ((await deps.store.getTpmByVm(vm.uuid)) !== null)
      throw new FlowError('conflict', `VM ${vm.name} has a TPM already`);
    return deps.store.addTpm({ uuid: randomUUID(), vmUuid: vm.uuid, keyProvider });
  });
}

export interface WriteFileInput {
  readonly vm: string;
  readonly type: FileType;
  readonly path: string;
  readonly content: Uint8Array;
  /** defaults to the VM's current host */
  readonly host?: string;
}

/** Writes a file onto a host through its agent, then records it; a pending deletion at that path is cancelled. */
export async function writeFile(deps: FlowDeps, input: WriteFileInput): Promise<VmHostFile> {
  const vm = await resolveVm(deps.store, input.vm);
  const hostRef = input.host ?? vm.hostUuid;
  if (hostRef === null) throw new FlowError('bad_input', `VM ${vm.name} is on no host: name one`);
  const host = await resolveHost(deps, hostRef);
  // The agent confines it to its root; this only refuses what no root could hold.
  if (!isValidRoot(input.path)) {
    throw new FlowError('bad_input', `${input.path} is not an absolute, normalized path`);
  }
  return deps.queue.run([vm.uuid], async () => {
    const answer = await deps.agents.send(host, 'files.apply', {
      ops: [writeOp(input.type, input.path, input.content)],
    });
    const result = answer.results[0];
    if (result?.status !== 'written') {
      throw new FlowError(
        'conflict',
        `the agent did not write ${input.path}: ${result?.error?.code ?? 'no result'} ${result?.error?.message ?? ''}`,
      );
    }
    const { file, cancelled } = await deps.store.upsertFile({
      uuid: randomUUID(),
      vmUuid: vm.uuid,
      hostUuid: host.uuid,
      type: input.type,
      path: input.path,
      sha256: createHash('sha256').update(input.content).digest('hex'),
      size: input.content.byteLength,
      lastSyncAt: deps.now(),
    });
    // The new file replaced the old TPM's state at this path: that TPM may have nothing left pending.
    const oldTpm = cancelled?.tpmUuid ?? null;
    if (oldTpm !== null) {
      await deps.store.transaction(async (tx) => {
        if ((await tx.getKeyBinding(oldTpm)) !== null) await settleBinding(tx, oldTpm);
      });
    }
    return file;
  });
}

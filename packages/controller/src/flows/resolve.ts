// Turning what an operator or the API names (a uuid or a name) into rows, with clear errors.
import { UUID_PATTERN } from '@hostfiles/shared';
import type { StoreReads, Vm } from '../store/index.js';
import { FlowError } from './deps.js';

/**
 * A host or VM is named by its uuid or by its name: a ref in a uuid's shape is a uuid, anything else a name, in every
 * lookup (flows, CLI, API). So no name may take a uuid's shape, in any case: `host remove <it>` could otherwise act
 * on the host whose uuid it is while `host drain <it>` showed the one so named.
 */
export function nameProblem(name: string, ownUuid?: string): string | undefined {
  if (name === '') return 'is empty';
  // Its own uuid names nothing else (a platform that names its libvirt domains by their uuid).
  if (UUID_PATTERN.test(name.toLowerCase()) && name.toLowerCase() !== ownUuid) {
    return 'is shaped like a uuid, and a uuid names the host or VM that has it';
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'holds a control character';
  return undefined;
}

export async function resolveVm(store: StoreReads, ref: string): Promise<Vm> {
  const vm = UUID_PATTERN.test(ref) ? await store.getVm(ref) : await store.getVmByName(ref);
  if (vm === null) throw new FlowError('not_found', `no VM ${ref}`);
  return vm;
}

/** Many refs at once: one listing instead of a query per VM (a bulk removal names a thousand). */
export async function resolveVms(store: StoreReads, refs: readonly string[]): Promise<Vm[]> {
  if (refs.length <= 8) return Promise.all(refs.map((ref) => resolveVm(store, ref)));
  const all = await store.listVms();
  // As resolveVm: a ref in a uuid's shape is looked up by uuid, any other by name.
  const byUuid = new Map(all.map((vm) => [vm.uuid, vm]));
  const byName = new Map(all.map((vm) => [vm.name, vm]));
  return refs.map((ref) => {
    const vm = (UUID_PATTERN.test(ref) ? byUuid : byName).get(ref);
    if (vm === undefined) throw new FlowError('not_found', `no VM ${ref}`);
    return vm;
  });
}

/** A VM needs NVRAM exactly when it boots UEFI and has a TPM or secure boot. */
export const needsNvram = (vm: Vm, hasTpm: boolean): boolean => vm.bootMode === 'UEFI' && (hasTpm || vm.secureBoot);

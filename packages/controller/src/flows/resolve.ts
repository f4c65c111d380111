// Turning what an operator or the API names (a uuid or a name) into rows, with clear errors.
import type { StoreReads, Vm } from '../store/index.js';
import { FlowError } from './deps.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export async function resolveVm(store: StoreReads, ref: string): Promise<Vm> {
  const vm = UUID.test(ref) ? await store.getVm(ref) : await store.getVmByName(ref);
  if (vm === null) throw new FlowError('not_found', `no VM ${ref}`);
  return vm;
}

/** Many refs at once: one listing instead of a query per VM (a bulk removal names a thousand). */
export async function resolveVms(store: StoreReads, refs: readonly string[]): Promise<Vm[]> {
  if (refs.length <= 8) return Promise.all(refs.map((ref) => resolveVm(store, ref)));
  const all = await store.listVms();
  const byKey = new Map<string, Vm>();
  for (const vm of all) byKey.set(vm.uuid, vm).set(vm.name, vm);
  return refs.map((ref) => {
    const vm = byKey.get(ref);
    if (vm === undefined) throw new FlowError('not_found', `no VM ${ref}`);
    return vm;
  });
}

/** A VM needs NVRAM exactly when it boots UEFI and has a TPM or secure boot. */
export const needsNvram = (vm: Vm, hasTpm: boolean): boolean => vm.bootMode === 'UEFI' && (hasTpm || vm.secureBoot);

// Store-only lookups for commands that need no agent (and so no key): names to rows, uuids to names.
import type { Host, StoreReads, Vm } from '../store/index.js';
import { UUID_PATTERN } from '@hostfiles/shared/core';
import { CliError } from './errors.js';

/** By uuid when the ref is shaped like one, else by name: as the flows' resolvers, with the same messages. */
export async function findHost(store: StoreReads, ref: string): Promise<Host> {
  const host = UUID_PATTERN.test(ref) ? await store.getHost(ref) : await store.getHostByName(ref);
  if (host === null) throw new CliError(`no host ${ref}`);
  return host;
}

export async function findVm(store: StoreReads, ref: string): Promise<Vm> {
  const vm = UUID_PATTERN.test(ref) ? await store.getVm(ref) : await store.getVmByName(ref);
  if (vm === null) throw new CliError(`no VM ${ref}`);
  return vm;
}

export { loadNames, type Names } from '../store/types.js';

// The audit of the NVRAM files on one host as they are now, read through its agent (as sync reads them, checked the
// same way), instead of the stored copies: for a host whose VMs ran since their last sync.
import type { FileType } from '@hostfiles/shared';
import type { FlowDeps } from '../flows/index.js';
import { resolveHost } from '../flows/inventory.js';
import { stateFromRead } from '../flows/state.js';
import type { Host, VmHostFile } from '../store/index.js';
import { unreadable, type StoreAudit } from './audit.js';
import { auditVolume, countStates, notApplicable, type FleetAudit, type VmAudit } from './fleet.js';
import { storedVolume } from './stored-bytes.js';

/** Files per read command: a few 64 MiB stores travel as a few KiB of gzip each, and are inflated one at a time. */
const FILES_PER_READ = 16;
const NVRAM: FileType = 'NvRam';

/** Every VM placed on the host or with NVRAM recorded there, by name; one whose file cannot be read says why. */
export async function auditLiveNvram(deps: FlowDeps, hostRef: string): Promise<FleetAudit> {
  const host = await resolveHost(deps, hostRef);
  const rows = (await deps.store.listFilesByHost(host.uuid)).filter((row) => row.type === NVRAM);
  const byVm = new Map(rows.map((row) => [row.vmUuid, row]));
  const vms = (await deps.store.listVms()).filter((vm) => vm.hostUuid === host.uuid || byVm.has(vm.uuid));
  const audits = new Map<string, FileAudit>();
  const now = deps.now(); // the audit's clock, read once: whether a 2011 CA has expired
  for (let i = 0; i < rows.length; i += FILES_PER_READ) {
    for (const [row, audit] of await readAndAudit(deps, host, rows.slice(i, i + FILES_PER_READ), now)) {
      audits.set(row.vmUuid, audit);
    }
  }
  const result = [...vms]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((vm): VmAudit => {
      const base = { vmUuid: vm.uuid, vmName: vm.name, hostUuid: host.uuid };
      const audit = audits.get(vm.uuid);
      if (audit !== undefined) return { ...base, nvram: audit.nvram, ...audit.audit };
      const reason = vm.bootMode === 'Legacy' ? 'legacy boot: no NVRAM' : `no NVRAM recorded on ${host.name}`;
      return { ...base, nvram: null, ...notApplicable(reason) };
    });
  return { vms: result, counts: countStates(result), at: now };
}

interface FileAudit {
  readonly audit: StoreAudit;
  readonly nvram: VmAudit['nvram'];
}

/** One read command for these files; an agent that does not answer fails the audit (exit 1), like any flow's. */
async function readAndAudit(
  deps: FlowDeps,
  host: Host,
  rows: readonly VmHostFile[],
  now: number,
): Promise<[VmHostFile, FileAudit][]> {
  const files = rows.map((row) => ({ type: row.type, path: row.path }));
  const bytes = rows.reduce((n, row) => n + row.size, 0);
  const { results } = await deps.agents.send(host, 'files.read', { files }, { bytes });
  const audited: [VmHostFile, FileAudit][] = [];
  for (const [i, row] of rows.entries()) {
    const result = results[i];
    let audit: StoreAudit;
    let nvram: VmAudit['nvram'] = null;
    if (result?.path !== row.path) audit = unreadable(`${row.path}: no result for this file`);
    else if (result.status === 'failed')
      audit = unreadable(`${row.path}: ${result.error.code}: ${result.error.message}`);
    else {
      const state = await stateFromRead(result);
      const entry = typeof state === 'string' ? undefined : state.entries[0];
      const volume = entry === undefined ? undefined : await storedVolume(entry);
      if (typeof state === 'string') audit = unreadable(`${row.path}: the agent's answer does not check: ${state}`);
      else if (volume === undefined || state.kind !== 'file') audit = unreadable(`${row.path} is not a file`);
      else audit = volume.ok ? auditVolume(volume.value, now) : unreadable(volume.error);
      if (typeof state !== 'string') nvram = { sha256: state.sha256, size: state.size, at: now, path: row.path };
    }
    audited.push([row, { audit, nvram }]);
  }
  return audited;
}

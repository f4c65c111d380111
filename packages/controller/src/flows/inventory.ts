// Adding hosts, VMs and TPMs, moving a VM, and writing a VM's state onto a host.
import { randomUUID } from 'node:crypto';
import { truncate, UUID_PATTERN, type FileType } from '@hostfiles/shared';
import type { BootMode, Host, Operation, TpmWithBinding, Vm } from '../store/index.js';
import { FlowError, type FlowDeps } from './deps.js';
import { keysOfStates, stateKeys, vmKey } from './lock-keys.js';
import { placeOnHost, planPlacements, type PlacedFile, type PlaceJournal } from './place.js';
import { nameProblem, resolveVm } from './resolve.js';
import { runPlanned, type Plan } from './run-planned.js';
import type { State } from './state.js';
import { failJournalOnError } from './sync.js';
import { OPERATION_KIND } from '../store/types.js';

export const WRITE_FILE = OPERATION_KIND.writeFile;

export async function resolveHost(deps: FlowDeps, ref: string): Promise<Host> {
  const host = UUID_PATTERN.test(ref) ? await deps.store.getHost(ref) : await deps.store.getHostByName(ref);
  if (host === null) throw new FlowError('not_found', `no host ${ref}`);
  return host;
}

export interface NewVmInput {
  readonly name: string;
  readonly host: string;
  readonly bootMode: BootMode;
  readonly secureBoot: boolean;
  /** libvirt's domain uuid (lowercase); a new random one when absent */
  readonly uuid?: string;
}

/**
 * Why a name cannot be a libvirt domain's (undefined when it can): libvirt refuses a '/' in one, and the VM's NVRAM
 * is `<NvRam root>/<name>_VARS.fd` by default, so a '/' would put it below a directory of that root; control
 * characters would end up in paths and log lines.
 */
function vmNameProblem(name: string, uuid: string): string | undefined {
  if (name.includes('/')) return "holds a '/', which no libvirt domain name does";
  const bytes = Buffer.byteLength(name);
  if (bytes > MAX_VM_NAME_BYTES) {
    return `is ${bytes} bytes: its NVRAM file, ${NVRAM_SUFFIX} after it, would be over the 255 a file name may have`;
  }
  return nameProblem(name, uuid);
}

/** What libvirt puts after a domain's name for its NVRAM file; a file name holds 255 bytes at most. */
const NVRAM_SUFFIX = '_VARS.fd';
const MAX_VM_NAME_BYTES = 255 - NVRAM_SUFFIX.length;

export async function addVm(deps: FlowDeps, input: NewVmInput): Promise<Vm> {
  const uuid = input.uuid ?? randomUUID();
  const problem = vmNameProblem(input.name, uuid);
  if (problem !== undefined) {
    throw new FlowError('bad_input', `the VM name ${truncate(JSON.stringify(input.name))} ${problem}`);
  }
  if (!UUID_PATTERN.test(uuid))
    throw new FlowError('bad_input', `${uuid} is not a uuid: 8-4-4-4-12 hex digits (libvirt's domain uuid)`);
  const host = await resolveHost(deps, input.host);
  if (input.bootMode === 'Legacy' && input.secureBoot) throw new FlowError('bad_input', 'secure boot needs UEFI');
  return deps.store.addVm({
    uuid,
    name: input.name,
    hostUuid: host.uuid,
    bootMode: input.bootMode,
    secureBoot: input.secureBoot,
  });
}

export interface MoveReport {
  readonly vmUuid: string;
  readonly vmName: string;
  readonly from: { readonly hostUuid: string; readonly hostName: string } | null;
  readonly to: { readonly hostUuid: string; readonly hostName: string };
  /** the VM's states still recorded on other hosts than the new one: they stay until removed */
  readonly elsewhere: readonly {
    readonly hostUuid: string;
    readonly hostName: string;
    readonly type: FileType;
    readonly path: string;
  }[];
}

/**
 * Records that the VM now lives on `host` (libvirt moved or migrated it). Nothing on any host changes: the old host's
 * state stays recorded (and is deleted with the VM's TPM, or when removed); `sync` now reads from the new host.
 */
export async function moveVm(deps: FlowDeps, vmRef: string, hostRef: string): Promise<MoveReport> {
  const resolved = await resolveVm(deps.store, vmRef);
  const host = await resolveHost(deps, hostRef);
  return deps.queue.run([vmKey(resolved.uuid)], async () => {
    const vm = await resolveVm(deps.store, resolved.uuid);
    const from = vm.hostUuid === null ? null : await deps.store.getHost(vm.hostUuid);
    await deps.store.setVmHost(vm.uuid, host.uuid);
    const files = await deps.store.listFilesByVm(vm.uuid);
    const names = new Map((await deps.store.listHosts()).map((h) => [h.uuid, h.name]));
    return {
      vmUuid: vm.uuid,
      vmName: vm.name,
      from: from === null ? null : { hostUuid: from.uuid, hostName: from.name },
      to: { hostUuid: host.uuid, hostName: host.name },
      elsewhere: files
        .filter((f) => f.hostUuid !== host.uuid)
        .map(({ hostUuid, type, path }) => ({ hostUuid, hostName: names.get(hostUuid) ?? hostUuid, type, path })),
    };
  });
}

export async function addTpm(deps: FlowDeps, vmRef: string, keyProvider: string): Promise<TpmWithBinding> {
  const vm = await resolveVm(deps.store, vmRef);
  return deps.queue.run([vmKey(vm.uuid)], async () => {
    if ((await deps.store.getTpmByVm(vm.uuid)) !== null)
      throw new FlowError('conflict', `VM ${vm.name} has a TPM already`);
    return deps.store.addTpm({ uuid: randomUUID(), vmUuid: vm.uuid, keyProvider });
  });
}

export interface WriteFileInput {
  readonly vm: string;
  readonly type: FileType;
  readonly path: string;
  /** a file's bytes, or a directory's files (a vTPM state: `tpm2/tpm2-00.permall`, …) */
  readonly state: State;
  /** defaults to the VM's current host */
  readonly host?: string;
  /** write over state hostfiles does not know at that path (without it, such a path is refused) */
  readonly force?: boolean;
}

/** A state written and recorded, with the operation that journaled it. */
export type WrittenFile = Extract<PlacedFile, { readonly status: 'written' }> & { readonly operationId: string };

/** What the journal keeps of a write: never its content. */
export interface WriteReport {
  readonly operationId: string;
  readonly vmName: string;
  readonly hostName: string;
  readonly file: PlacedFile;
  /** why the host could not be reached or refused the command, if it did */
  readonly error?: string;
}

/**
 * Writes a VM's state onto a host through its agent and records it. Checked before anything is sent: a path that is
 * another VM's (or inside or around it) is refused; a path the VM does not hold must be empty unless forced. The
 * VM's earlier path of that type on that host is deleted through the outbox, in the transaction that records the new
 * one. A pending deletion at the path is cancelled. Journaled (`file.write`) once the checks passed, in the
 * transactions the write commits anyway. Throws unless the state was written.
 */
export async function writeFile(
  deps: FlowDeps,
  input: WriteFileInput,
  operationId: string = randomUUID(),
): Promise<WrittenFile> {
  const resolved = await resolveVm(deps.store, input.vm);
  const hostRef = input.host ?? resolved.hostUuid;
  if (hostRef === null) throw new FlowError('bad_input', `VM ${resolved.name} is on no host: name one`);
  const host = await resolveHost(deps, hostRef);
  return runPlanned(
    deps,
    () => writeKeys(deps, resolved.uuid, host, input),
    async () => {
      const vm = await resolveVm(deps.store, resolved.uuid);
      const planned = await planPlacements(
        deps,
        host,
        [{ vm, type: input.type, path: input.path, state: input.state }],
        input.force === true,
      );
      const { files } = await failJournalOnError(deps, operationId, () =>
        placeOnHost(deps, host, planned, writeJournal(operationId, vm, host, input)),
      );
      const [file] = files;
      if (file === undefined) throw new Error('bug: a placement without an outcome');
      if (file.status !== 'written') throw placeError(file, host);
      return { ...file, operationId };
    },
  );
}

function writeJournal(operationId: string, vm: Vm, host: Host, input: WriteFileInput): PlaceJournal {
  const { kind, sha256, size } = input.state;
  return {
    captures: true,
    operation: {
      id: operationId,
      kind: WRITE_FILE,
      subject: vm.uuid,
      step: 'write',
      input: {
        vm: vm.uuid,
        host: host.uuid,
        type: input.type,
        path: input.path,
        kind,
        sha256,
        size,
        force: input.force === true,
      },
    },
    finish: (files, error) => {
      const [file] = files;
      if (file === undefined) throw new Error('bug: a placement without an outcome');
      const report: WriteReport = {
        operationId,
        vmName: vm.name,
        hostName: host.name,
        file,
        ...(error === undefined ? {} : { error }),
      };
      return { state: file.status === 'written' ? 'done' : 'failed', report };
    },
  };
}

/**
 * A write the controller was killed in cannot be repeated (its content is not journaled): it ends 'failed', saying
 * what settles it. A guard armed for a new path deletes exactly those bytes if they landed; over the VM's own path,
 * what landed shows as modified (reconcile) and a sync records it.
 */
export async function resumeWrite(deps: FlowDeps, operation: Operation): Promise<'failed'> {
  await deps.store.finishOperation(operation.id, 'failed', { error: await unfinishedWrite(deps, operation.input) });
  return 'failed';
}

async function unfinishedWrite(deps: FlowDeps, input: unknown): Promise<string> {
  const { host, path, sha256 } = (typeof input === 'object' && input !== null ? input : {}) as Readonly<
    Record<string, unknown>
  >;
  const stopped = 'the controller stopped before the write was recorded';
  if (typeof host !== 'string' || typeof path !== 'string') return `${stopped}; its input cannot be read`;
  const row = (await deps.store.listFilesByHost(host)).find((f) => f.path === path);
  if (row?.sha256 === sha256) return `${stopped}; the same state was recorded there since: nothing is left to settle`;
  const pending = await deps.store.listPendingDeletions({ hostUuid: host, path });
  if (pending.some((p) => p.expectSha256 === sha256))
    return `${stopped}: its guard deletes the bytes if they landed; write again`;
  return (
    `${stopped}: if it landed over the VM's own state, reconcile reports it modified and a sync records it; ` +
    'else write again'
  );
}

/**
 * A write holds the VM, the path it writes, and the VM's state of that type on that host where it lies elsewhere:
 * the write puts that one in the outbox when it records the new one.
 */
async function writeKeys(deps: FlowDeps, vmUuid: string, host: Host, input: WriteFileInput): Promise<Plan<null>> {
  const own = (await deps.store.listFilesByVm(vmUuid)).filter((f) => f.hostUuid === host.uuid && f.type === input.type);
  return { keys: [vmKey(vmUuid), ...stateKeys(host.uuid, input.type, input.path), ...keysOfStates(own)], value: null };
}

/** The error a state not written is reported with. */
export function placeError(file: PlacedFile & { readonly status: 'failed' | 'unknown' }, host: Host): FlowError {
  const where = `${file.path} on host ${host.name}`;
  switch (file.code) {
    case 'busy':
      return new FlowError('busy', `${where} is in use (a running swtpm or QEMU holds its lock): stop the VM first`);
    case 'outside_root':
    case 'bad_request':
    case 'too_large':
      // The agent refused what was asked (a path outside its roots, content over its limit): the caller's error.
      return new FlowError('bad_input', `the agent refused ${where}: ${file.reason}`);
    case 'expired':
      // Nothing landed: the op reached its change only once its command could no longer be applied.
      return new FlowError(
        'unavailable',
        `${where} was not written in time (its command expired meanwhile): write again`,
      );
    case 'changed':
      return new FlowError(
        'conflict',
        `${where} holds other state than the deletion pending there was to remove, state hostfiles does not know: ` +
          'adopt it (hostfiles adopt), or write over it with --force',
      );
    case 'exists':
      return new FlowError(
        'conflict',
        `${where} holds state hostfiles does not know: adopt it (hostfiles adopt), or write over it with --force`,
      );
    default:
      return file.status === 'unknown'
        ? new FlowError(
            'unavailable',
            `${where}: the outcome is unknown (${file.reason}); if it landed unrecorded, its guard deletion removes it`,
          )
        : new FlowError('conflict', `the agent did not write ${where}: ${file.reason}`);
  }
}

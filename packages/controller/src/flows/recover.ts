// Recover after host loss: the VM's newest generations written onto another host, the VM moved there at a new epoch,
// and what its lost host holds forgotten and scheduled for deletion through the outbox. One journaled flow; a
// controller killed in it resumes it from its input (the same generations onto the same host) and finishes it once.
import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import type { FileType } from '@hostfiles/shared';
import { errnosOf } from '../agents/index.js';
import type { BackupFile, Host, NewPendingDeletion, Operation, Vm, VmHostFile } from '../store/index.js';
import { FlowError, isFlowError, type FlowDeps } from './deps.js';
import { checkHost, NOTHING_THERE, type HostHealth } from './hosts.js';
import { resolveHost } from './inventory.js';
import { vmKey, wholeHost } from './lock-keys.js';
import { runPlanned, type Plan } from './run-planned.js';
import { placeOnHost, planPlacements, type PlacedFile } from './place.js';
import { resolveVm } from './resolve.js';
import { journaledGenerations, planRestore } from './restore.js';
import { failJournalOnError, repeatFlow, startJournal } from './sync.js';
import { OPERATION_KIND } from '../store/types.js';

export const RECOVER_VM = OPERATION_KIND.recoverVm;

export interface RecoverOptions {
  /** write over state hostfiles does not know at a new path on the new host */
  readonly force?: boolean;
  /**
   * The VM's host is given up though something answers at its address (a reinstalled host with a new key, an agent
   * that no longer trusts this controller): without it, only a host that cannot be reached at all is lost.
   */
  readonly hostLost?: boolean;
}

export interface RecoverReport {
  readonly operationId: string;
  readonly vmUuid: string;
  readonly vmName: string;
  /** the host the VM was on (lost), or null when it was placed nowhere */
  readonly from: { readonly hostUuid: string; readonly hostName: string } | null;
  readonly to: { readonly hostUuid: string; readonly hostName: string };
  /** the generation written of each type */
  readonly generations: readonly { readonly type: FileType; readonly generation: number }[];
  readonly files: readonly PlacedFile[];
  /** why the new host could not be reached or refused the command, if it did (then nothing moved) */
  readonly error?: string;
  /** the VM's epoch once moved; null when the restore failed and nothing moved */
  readonly epoch: number | null;
  /** the states recorded on other hosts, forgotten and scheduled for deletion (the outbox) */
  readonly scheduled: readonly { readonly hostUuid: string; readonly type: FileType; readonly path: string }[];
}

/** What a resumed recover began from: the VM's host and epoch then. Anything else since, and it must not go on. */
export interface RecoverStart {
  readonly from: string | null;
  readonly epoch: number;
}

/**
 * Restores the VM's newest generation of each type onto `toRef` (as `restore --host` does: guarded, recorded), then,
 * in one transaction with the journal's end: moves the VM there (its epoch rises), forgets its states on every other
 * host and puts their deletion in the outbox, unconditional (the copy of a host the VM left is stale whatever it
 * holds; a running QEMU's lock keeps it until released). A restore that does not land moves nothing. Held: the VM,
 * the new host, and every host it has states on (the lost one included), whole: each is forgotten there.
 */
export async function recoverVm(
  deps: FlowDeps,
  vmRef: string,
  toRef: string,
  options: RecoverOptions = {},
  operationId: string = randomUUID(),
  resumed?: {
    readonly chosen: readonly { readonly type: FileType; readonly generation: number }[];
    readonly start: RecoverStart;
  },
): Promise<RecoverReport> {
  const resolved = await resolveVm(deps.store, vmRef);
  const to = await resolveHost(deps, toRef);
  // Recover is for a host that was lost: onto the host the VM lives on it would write its backups over what may be
  // newer state there, never synced. That is a restore, asked for as one.
  if (resumed === undefined && resolved.hostUuid === to.uuid) {
    throw new FlowError(
      'conflict',
      `VM ${resolved.name} lives on ${to.name} already: recover moves a VM off a lost host; ` +
        'to write its backups back where it is, run restore',
    );
  }
  const plan = async (): Promise<Plan<Vm>> => {
    const vm = await resolveVm(deps.store, resolved.uuid);
    const hosts = new Set((await deps.store.listFilesByVm(vm.uuid)).map((f) => f.hostUuid));
    if (vm.hostUuid !== null) hosts.add(vm.hostUuid);
    hosts.add(to.uuid);
    return { keys: [vmKey(vm.uuid), ...[...hosts].map(wholeHost)], value: vm };
  };
  return runPlanned(deps, plan, async (vm) => {
    if (vm.hostUuid !== resolved.hostUuid) {
      throw new FlowError('conflict', `VM ${vm.name} moved while the recover waited: run it again`);
    }
    // A resumed recover goes on only from where it began: a VM moved or restored since (another recover, say) holds
    // newer state than the generations it journaled, which must not be written over nor its host's copy forgotten.
    if (resumed !== undefined && (vm.hostUuid !== resumed.start.from || vm.epoch !== resumed.start.epoch)) {
      throw new FlowError(
        'conflict',
        `VM ${vm.name} moved or was restored since the recover began (epoch ${resumed.start.epoch}, now ${vm.epoch})`,
      );
    }
    const backups = await generationsToRecover(deps, vm, resumed?.chosen);
    // For a lost host only: one whose agent answers still holds the VM's state, maybe newer than its backups, which
    // recover would forget and schedule for deletion. Asked now, as `host check` asks (and recorded so), not read off
    // the host's last contact: a host that went down since still shows Connected.
    if (resumed === undefined && vm.hostUuid !== null && options.hostLost !== true) {
      const source = await deps.store.getHost(vm.hostUuid);
      const answer = source === null ? undefined : await whoAnswers(deps, source);
      if (source !== null && answer !== undefined) {
        throw new FlowError(
          'conflict',
          `host_in_use: VM ${vm.name}'s host ${source.name} ${answer}: recover is for a lost host, and would forget ` +
            'and delete its copy of the state, which may be newer than the backups; nothing changed. If libvirt ' +
            'moved the VM, `hostfiles vm move` records it; if the host is given up though something answers there, ' +
            'say so (--host-lost)',
        );
      }
    }
    const placements = await planRestore(deps, vm, to, backups, {});
    const planned = await planPlacements(deps, to, placements, options.force === true);
    const generations = backups.map((b) => ({ type: b.type, generation: b.generation }));
    const input = {
      vm: vm.uuid,
      from: vm.hostUuid,
      epoch: vm.epoch,
      to: to.uuid,
      generations,
      force: options.force === true,
    };
    await startJournal(deps, { id: operationId, kind: RECOVER_VM, subject: vm.uuid, step: 'restore', input });
    return failJournalOnError(deps, operationId, async () => {
      const { files, error } = await placeOnHost(deps, to, planned);
      const from = vm.hostUuid === null ? null : await deps.store.getHost(vm.hostUuid);
      const base = { operationId, vm, from, to, generations, files, ...(error === undefined ? {} : { error }) };
      if (!files.every((f) => f.status === 'written')) {
        const report = reportOf(base, null, []);
        await deps.store.finishOperation(operationId, 'failed', report);
        return report;
      }
      return moveAndForget(deps, base);
    });
  });
}

/** The newest generation of each type, or those a resumed recover began with (the same bytes again). */
async function generationsToRecover(
  deps: FlowDeps,
  vm: Vm,
  chosen: readonly { readonly type: FileType; readonly generation: number }[] | undefined,
): Promise<BackupFile[]> {
  if (chosen === undefined) {
    const newest = await deps.store.listBackupsByVm(vm.uuid);
    if (newest.length === 0) throw new FlowError('not_found', `VM ${vm.name} has no generation to recover`);
    return newest;
  }
  return journaledGenerations(deps, vm, chosen);
}

interface Restored {
  readonly operationId: string;
  readonly vm: Vm;
  readonly from: Host | null;
  readonly to: Host;
  readonly generations: RecoverReport['generations'];
  readonly files: readonly PlacedFile[];
  readonly error?: string;
}

/** The move, the old states forgotten and scheduled, and the journal's end: one transaction, all or nothing. */
async function moveAndForget(deps: FlowDeps, restored: Restored): Promise<RecoverReport> {
  const { vm, to, operationId } = restored;
  const tpm = await deps.store.getTpmByVm(vm.uuid);
  return deps.store.transaction(async (tx) => {
    // The last line: the VM as the flow read it, under its keys, is the one moved.
    const now = await tx.getVm(vm.uuid);
    if (now?.hostUuid !== vm.hostUuid || now.epoch !== vm.epoch) {
      throw new FlowError('conflict', `VM ${vm.name} moved or was restored while the recover wrote`);
    }
    const epoch = await tx.setVmHost(vm.uuid, to.uuid);
    const elsewhere = (await tx.listFilesByVm(vm.uuid)).filter((f) => f.hostUuid !== to.uuid);
    await tx.deleteFiles(elsewhere.map((f) => f.uuid));
    await tx.addPendingDeletions(elsewhere.map((f) => staleCopy(deps, vm, f, tpm?.uuid ?? null)));
    const report = reportOf(restored, epoch, elsewhere);
    await tx.finishOperation(operationId, 'done', report);
    return report;
  });
}

const staleCopy = (deps: FlowDeps, vm: Vm, f: VmHostFile, tpmUuid: string | null): NewPendingDeletion => ({
  hostUuid: f.hostUuid,
  type: f.type,
  path: f.path,
  vmUuid: vm.uuid,
  // The TPM's stale state holds its key binding back like any of its state.
  tpmUuid: f.type === 'TpmState' ? tpmUuid : null,
  nextAttemptAt: deps.now(),
  lastError: `recovered: VM ${vm.name} now lives on another host; this copy is stale`,
});

function reportOf(
  { operationId, vm, from, to, generations, files, error }: Restored,
  epoch: number | null,
  scheduled: readonly VmHostFile[],
): RecoverReport {
  return {
    operationId,
    vmUuid: vm.uuid,
    vmName: vm.name,
    from: from === null ? null : { hostUuid: from.uuid, hostName: from.name },
    to: { hostUuid: to.uuid, hostName: to.name },
    generations,
    files,
    ...(error === undefined ? {} : { error }),
    epoch,
    scheduled: scheduled.map(({ hostUuid, type, path }) => ({ hostUuid, type, path })),
  };
}

/**
 * Repeats a recover the controller was killed in: the same generations onto the same host (writes of the same bytes,
 * over the states the first run may have recorded there). Its move commits with its end, so a recover that moved is
 * done and never repeated.
 */
export async function resumeRecover(deps: FlowDeps, operation: Operation): Promise<'done' | 'failed'> {
  return repeatFlow(deps, operation, async (input) => {
    const { vm, to, generations, force, from, epoch } = input;
    if (
      typeof vm !== 'string' ||
      typeof to !== 'string' ||
      !Array.isArray(generations) ||
      !(typeof from === 'string' || from === null) ||
      typeof epoch !== 'number'
    ) {
      return 'the input cannot be read';
    }
    if ((await deps.store.getVm(vm)) === null) return 'the VM no longer exists';
    const chosen = generations as { type: FileType; generation: number }[];
    try {
      await recoverVm(deps, vm, to, { force: force === true }, operation.id, { chosen, start: { from, epoch } });
    } catch (error) {
      // Before anything was sent (its host gone, its generations pruned, the VM moved since): it cannot go on, and
      // trying again at every start would never change that.
      if (isFlowError(error) && (error.code === 'not_found' || error.code === 'conflict')) return error.message;
      throw error;
    }
    return null;
  });
}

/**
 * Who answers at the host's address, said as a reason not to recover from it; undefined when nothing does: no
 * answer in time and no connection either (the probe below), no route, a name that no longer resolves. Anything
 * else is someone there: its own agent; another key (a reinstalled host, or someone else at its address); a machine
 * that refuses the connection (up, its agent down: its VMs may well be running); an agent that closes this
 * controller's connection, or takes it and never answers (a hung agent, whose machine may well be running the VM).
 */
async function whoAnswers(deps: FlowDeps, host: Host): Promise<string | undefined> {
  let health: HostHealth;
  try {
    health = await checkHost(deps, host);
  } catch (error) {
    if (isFlowError(error) && error.code === 'host_key_changed') return 'answers with another key than the one pinned';
    throw error;
  }
  if (health.state === 'Connected') return 'answers';
  if (health.refused === true) {
    return 'refuses connections: the machine is up, only its agent is down (the VM may still run there)';
  }
  if (health.timedOut === true) {
    const probed = await probe(host.url);
    if (probed === 'connected') {
      return `accepts connections, but its agent did not answer in time (${health.reason ?? 'no reason'})`;
    }
    if (probed !== undefined) {
      return `did not answer in time, then answered a bare connection with ${probed}: the machine is up`;
    }
  }
  return health.silent === true ? undefined : `answers, but not as its agent (${health.reason ?? 'no reason'})`;
}

/** How long the probe of a host that did not answer in time waits for a TCP connection. */
const PROBE_MS = 3000;

/**
 * A bare TCP connection to the URL's host and port, within PROBE_MS (nothing is sent on it): `connected`; the
 * error code of a failure that is someone answering (a refusal, a reset: the machine, or a firewall, is there);
 * undefined when nothing is (no answer in time, no route, a name that resolves to nothing).
 */
async function probe(url: string): Promise<string | undefined> {
  const { hostname, port, protocol } = new URL(url);
  const socket = connect({
    host: hostname.replace(/^\[(.*)\]$/, '$1'),
    port: Number(port || (protocol === 'https:' ? 443 : 80)),
    timeout: PROBE_MS,
  });
  return new Promise<string | undefined>((resolve) => {
    const done = (outcome: string | undefined): void => {
      socket.destroy();
      resolve(outcome);
    };
    socket
      .once('connect', () => {
        done('connected');
      })
      .once('timeout', () => {
        done(undefined);
      })
      .once('error', (error) => {
        // Every address the name gave failed as nothing there, or one answered (the first such code says how).
        done(errnosOf(error, 'an error').find((code) => !NOTHING_THERE.has(code)));
      });
  });
}

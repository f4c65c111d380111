// At start, every operation the journal still shows `running` is carried to its end by repeating its flow.
// Repeating is safe: the steps before the purge are idempotent (collect only reads; a host delete of a file
// already gone answers `absent`), and the purge finishes the operation in its own transaction, so a `running`
// operation is exactly one whose purge never committed: its rows are all still there to collect again.
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Operation } from '../store/index.js';
import type { FlowDeps } from './deps.js';
import { DESTROY_VM, destroyVm } from './destroy-vm.js';
import { resumeWrite, WRITE_FILE } from './inventory.js';
import { vmKey } from './lock-keys.js';
import { RECONCILE_HOST, resumeReconcile } from './reconcile.js';
import { REMOVE_TPM, removeTpms, settleBinding } from './remove-tpm.js';
import { RECOVER_VM, resumeRecover } from './recover.js';
import { RESTORE_VM, resumeRestore } from './restore.js';
import { resumeSync, SYNC_VM } from './sync.js';
import { resumeFleetSync, SYNC_FLEET } from './fleet-sync.js';

export interface ResumeReport {
  /** Every running operation carried to its end (done or failed), in journal order. */
  readonly resumed: string[];
  /**
   * Of those, the ones finished 'failed': what they named was gone, or their repeat did not succeed (a restore whose
   * host was down); their report says what and why.
   */
  readonly failed: string[];
  /** Operations of a kind no resumer here knows: left running for a controller that does. */
  readonly unknown: string[];
  /** Operations whose resumption threw: left running, so the next start tries again. */
  readonly errors: { readonly id: string; readonly message: string }[];
  /** TPMs whose 'detaching' key binding was detached: none of their state files was pending any more. */
  readonly detached: string[];
}

/** A VM of a removal that can no longer be carried out on it, and why. */
export interface SkippedVm {
  readonly vmUuid: string;
  readonly reason: string;
}

type Outcome = 'done' | 'failed';

/**
 * Repeats what a killed controller left unfinished. Alone (no registration: the demo, tests), every running
 * operation; as a registered controller (serve at start and in each round, CLI commands), only those of controllers
 * dead past their grace, each claimed by exactly one controller.
 */
export async function resumeOperations(deps: FlowDeps): Promise<ResumeReport> {
  const report: ResumeReport = { resumed: [], failed: [], unknown: [], errors: [], detached: [] };
  // Beside other live controllers, only the operations of dead ones, each claimed by exactly one of us.
  const unfinished =
    deps.controller === undefined
      ? await deps.store.listUnfinishedOperations()
      : await deps.store.claimOrphanOperations(deps.controller.id, deps.now(), deps.controller.settings.graceMs);
  for (const operation of unfinished) {
    const resume = RESUMERS[operation.kind];
    if (resume === undefined) {
      report.unknown.push(operation.id);
      continue;
    }
    try {
      const outcome = await resume(deps, operation);
      report.resumed.push(operation.id);
      if (outcome === 'failed') report.failed.push(operation.id);
    } catch (error) {
      // One operation that cannot be finished now must not keep the others (or the controller) from going on.
      report.errors.push({ id: operation.id, message: error instanceof Error ? error.message : String(error) });
    }
  }
  report.detached.push(...(await settleDetachingBindings(deps)));
  return report;
}

const RESUMERS: Readonly<Record<string, (deps: FlowDeps, operation: Operation) => Promise<Outcome>>> = {
  [REMOVE_TPM]: resumeRemoval,
  [DESTROY_VM]: resumeDestroy,
  [SYNC_VM]: resumeSync,
  [SYNC_FLEET]: resumeFleetSync,
  [RESTORE_VM]: resumeRestore,
  [RECOVER_VM]: resumeRecover,
  [RECONCILE_HOST]: resumeReconcile,
  [WRITE_FILE]: resumeWrite,
};

// `tpms`, when a removal records it, pins the very TPMs it meant; otherwise the TPM's age tells.
const removalInput = z.object({ vms: z.array(z.string()).min(1), tpms: z.array(z.string()).optional() });
const destroyInput = z.object({ vm: z.string() });

/**
 * Repeats a removal on the VMs that still have the TPM it meant. A VM destroyed meanwhile, or whose TPM another
 * flow removed (it purged the same rows), is skipped: the operation is finished 'failed' with what was skipped.
 * If it had dispatched, some of the other VMs' files may be gone from their hosts already: their removal goes on as
 * a new one started in that same transaction, so no crash leaves a TPM whose state is half deleted. If it had not,
 * it is dropped whole, as removeTpms refuses a removal naming a VM without a TPM — and such a refused removal
 * is left 'running' in the journal at step 'collect', where it must never be carried out.
 */
async function resumeRemoval(deps: FlowDeps, operation: Operation): Promise<Outcome> {
  const input = removalInput.safeParse(operation.input);
  if (!input.success) return unreadable(deps, operation);
  const kept: { vmUuid: string; tpmUuid: string }[] = [];
  const skipped: SkippedVm[] = [];
  for (const [i, vmUuid] of input.data.vms.entries()) {
    const check = await removableTpm(deps, operation, vmUuid, input.data.tpms?.[i]);
    if ('tpmUuid' in check) kept.push({ vmUuid, tpmUuid: check.tpmUuid });
    else skipped.push({ vmUuid, reason: check.reason });
  }
  const vms = kept.map((k) => k.vmUuid);
  if (skipped.length === 0) {
    await removeTpms(deps, vms, operation.id);
    return 'done';
  }
  const dispatched = operation.step !== 'collect';
  const continuedAs = kept.length === 0 || !dispatched ? null : randomUUID();
  await deps.store.transaction(async (tx) => {
    if (continuedAs !== null) {
      const tpms = kept.map((k) => k.tpmUuid);
      await tx.startOperation({
        id: continuedAs,
        kind: REMOVE_TPM,
        subject: vms.join(','),
        step: 'collect',
        input: { vms, tpms },
      });
    }
    const error = dispatched
      ? 'some VMs no longer have the TPM this removal meant'
      : 'some VMs do not have the TPM this removal meant, and nothing was sent yet: none of it is carried out';
    await tx.finishOperation(operation.id, 'failed', { error, skipped, continuedAs });
  });
  if (continuedAs !== null) await removeTpms(deps, vms, continuedAs);
  return 'failed';
}

async function removableTpm(
  deps: FlowDeps,
  operation: Operation,
  vmUuid: string,
  meant: string | undefined,
): Promise<{ readonly tpmUuid: string } | { readonly reason: string }> {
  if ((await deps.store.getVm(vmUuid)) === null) return { reason: 'the VM no longer exists' };
  const tpm = await deps.store.getTpmByVm(vmUuid);
  if (tpm === null) return { reason: 'the VM no longer has a TPM' };
  // A TPM added after the removal began is a new one (the old one went first): it must not be removed.
  const same = meant === undefined ? tpm.createdAt <= operation.createdAt : tpm.uuid === meant;
  return same ? { tpmUuid: tpm.uuid } : { reason: 'the VM has another TPM, added after this removal began' };
}

/** Repeats a destruction; a VM already gone was destroyed by another flow, which purged its rows. */
async function resumeDestroy(deps: FlowDeps, operation: Operation): Promise<Outcome> {
  const input = destroyInput.safeParse(operation.input);
  if (!input.success) return unreadable(deps, operation);
  if ((await deps.store.getVm(input.data.vm)) === null) {
    await deps.store.finishOperation(operation.id, 'failed', {
      error: 'the VM no longer exists: another flow destroyed it',
      skipped: [{ vmUuid: input.data.vm, reason: 'the VM no longer exists' }],
    });
    return 'failed';
  }
  await destroyVm(deps, input.data.vm, operation.id);
  return 'done';
}

async function unreadable(deps: FlowDeps, operation: Operation): Promise<Outcome> {
  await deps.store.finishOperation(operation.id, 'failed', {
    error: `the input of this ${operation.kind} operation cannot be read: it cannot be repeated`,
  });
  return 'failed';
}

/**
 * Detaches every 'detaching' key binding whose TPM is gone and has no state file pending deletion any more
 * (e.g. a write cancelled its last deletion and the controller died before settling). Answers their TPMs.
 */
export async function settleDetachingBindings(deps: FlowDeps): Promise<string[]> {
  const detached: string[] = [];
  for (const binding of await deps.store.listKeyBindings({ state: 'detaching' })) {
    // Serialized with the VM's flows: a write landing now may be cancelling one of this TPM's deletions.
    const outcome = await deps.queue.run([vmKey(binding.vmUuid)], () =>
      deps.store.transaction(async (tx) => {
        if ((await tx.getKeyBinding(binding.tpmUuid))?.state !== 'detaching') return 'kept';
        if ((await tx.getTpmByVm(binding.vmUuid))?.uuid === binding.tpmUuid) return 'kept';
        return settleBinding(tx, binding.tpmUuid);
      }),
    );
    if (outcome === 'detached') detached.push(binding.tpmUuid);
  }
  return detached;
}

// The flows' reports as closed schemas; each outcome a closed object of its own under `oneOf`, told by `status`.
import { LISTING_BOUNDS, listEntrySchema, type ListEntry, type Roots } from '@hostfiles/shared';
import { z } from 'zod';
import type {
  AdoptedState,
  AdoptReport,
  DestroyReport,
  FleetMissingState,
  FleetReadState,
  FleetSyncHost,
  FleetSyncReport,
  FileOutcome,
  HostReport,
  MissingFile,
  ModifiedFile,
  MoveReport,
  PendingFile,
  PlacedFile,
  ReconcileReport,
  RemovalReport,
  RestoreReport,
  RetryReport,
  SyncBackup,
  SyncedFile,
  SyncReport,
  VmRemoval,
  WrittenFile,
} from '../../flows/index.js';
import {
  component,
  count,
  countWith,
  fileType,
  meta,
  of,
  path,
  sha256,
  size,
  stateKind,
  uuid,
  uuidWith,
} from './shape.js';

const onHost = { hostUuid: uuid, type: fileType, path };
const reason = z.string();
const why = z.enum(['changed', 'backup_behind']);
const binding = z.enum(['detached', 'detaching']);

export const fileOutcome = component(
  'FileOutcome',
  of<FileOutcome>()(
    z.discriminatedUnion('status', [
      z.strictObject({ ...onHost, status: z.enum(['deleted', 'absent']) }),
      z.strictObject({
        ...onHost,
        status: meta(z.enum(['changed', 'unconfirmed']), {
          description: 'changed: other state is there now, not ours to delete; unconfirmed: still to do',
        }),
        reason,
      }),
      z.strictObject({
        ...onHost,
        status: meta(z.literal('planned'), { description: "a dry run's (the CLI's --dry-run): nothing was sent" }),
      }),
    ]),
  ),
  'the outcome of one deletion on a host',
);

export const hostReport = component(
  'HostReport',
  of<HostReport>()(
    z.strictObject({
      hostUuid: uuid,
      hostName: z.string(),
      commands: count,
      error: meta(z.string().optional(), { description: 'why the host could not be reached, or refused' }),
      files: z.array(fileOutcome),
    }),
  ),
);

export const pendingFile = component(
  'PendingFile',
  of<PendingFile>()(z.strictObject({ ...onHost, vmUuid: uuid, reason })),
  'a deletion not confirmed, now in the outbox',
);

export const vmRemoval = component(
  'VmRemoval',
  of<VmRemoval>()(
    z.strictObject({
      vmUuid: uuid,
      vmName: z.string(),
      tpmUuid: uuid,
      nvram: z.enum(['deleted', 'kept: secure boot', 'none: legacy boot']),
      binding,
    }),
  ),
);

export const removalReport = component(
  'RemovalReport',
  of<RemovalReport>()(
    z.strictObject({
      operationId: uuid,
      vms: z.array(vmRemoval),
      hosts: z.array(hostReport),
      commands: count,
      pending: z.array(pendingFile),
    }),
  ),
);

export const destroyReport = component(
  'DestroyReport',
  of<DestroyReport>()(
    z.strictObject({
      operationId: uuid,
      vmUuid: uuid,
      vmName: z.string(),
      tpm: z.strictObject({ tpmUuid: uuid, binding }).nullable(),
      hosts: z.array(hostReport),
      commands: count,
      pending: z.array(pendingFile),
    }),
  ),
);

export const retryReport = component(
  'RetryReport',
  of<RetryReport>()(
    z.strictObject({
      attempted: count,
      confirmed: count,
      dropped: countWith('conditional deletions dropped: the path no longer held what they were to delete'),
      stillPending: count,
      detached: meta(z.array(uuid), { description: 'the TPMs whose key binding this pass detached' }),
      hosts: z.array(hostReport),
    }),
  ),
);

const hostRef = z.strictObject({ hostUuid: uuid, hostName: z.string() });
export const moveReport = component(
  'MoveReport',
  of<MoveReport>()(
    z.strictObject({
      vmUuid: uuid,
      vmName: z.string(),
      from: hostRef.nullable(),
      to: hostRef,
      elsewhere: meta(z.array(z.strictObject({ ...onHost, hostName: z.string() })), {
        description: "the VM's states still recorded on other hosts: they stay until removed",
      }),
    }),
  ),
);

const placed = { vmUuid: uuid, hostUuid: uuid, type: fileType, path, kind: stateKind, sha256, size };
const replaced = meta(path.optional(), {
  description: "written only: the VM's earlier path of this type on this host, now pending deletion",
});
export const writtenFile = component(
  'WrittenFile',
  of<Extract<PlacedFile, { status: 'written' }>>()(
    z.strictObject({ ...placed, replaced, status: z.literal('written') }),
  ),
  'a state written on the host and recorded',
);
export const writeFileReport = component(
  'WriteFileReport',
  of<WrittenFile>()(
    z.strictObject({
      ...placed,
      replaced,
      status: z.literal('written'),
      operationId: uuidWith('the operation that journaled the write: `hostfiles ops show ID`, GET /v1/operations/{id}'),
    }),
  ),
  'a state written on the host and recorded, with the operation that journaled it',
);
export const placedFile = component(
  'PlacedFile',
  of<PlacedFile>()(
    z.discriminatedUnion('status', [
      writtenFile,
      z.strictObject({
        ...placed,
        status: meta(z.enum(['failed', 'unknown']), {
          description: 'failed: the agent did not write (nothing changed); unknown: no trustworthy answer',
        }),
        code: meta(z.string(), { description: "the agent's op or request error code, or the call's failure" }),
        reason,
      }),
    ]),
  ),
);

const stateFacts = { kind: stateKind, sha256, size };
export const syncedFile = component(
  'SyncedFile',
  of<SyncedFile>()(
    z.discriminatedUnion('status', [
      z.strictObject({ ...onHost, hostName: z.string(), status: z.literal('read'), ...stateFacts }),
      z.strictObject({ ...onHost, hostName: z.string(), status: z.enum(['missing', 'failed']), reason }),
    ]),
  ),
);

export const syncBackup = component(
  'SyncBackup',
  of<SyncBackup>()(
    z.strictObject({
      ...onHost,
      hostName: z.string(),
      ...stateFacts,
      generation: z.int().positive(),
      created: meta(z.boolean(), {
        description: 'false: the newest generation already held exactly this state, and no new one was made',
      }),
    }),
  ),
  'the backup of one type as the sync left it (its newest generation), and the file it was taken from',
);

export const syncReport = component(
  'SyncReport',
  of<SyncReport>()(
    z.strictObject({
      operationId: uuid,
      vmUuid: uuid,
      vmName: z.string(),
      commands: count,
      files: z.array(syncedFile),
      backups: z.array(syncBackup),
      notUpdated: meta(z.array(syncedFile), {
        description: 'the types whose source could not be read: their earlier backup is kept',
      }),
      fenced: meta(
        z.array(z.strictObject({ ...onHost, hostName: z.string(), code: z.literal('fenced'), reason: z.string() })),
        {
          description:
            "states read that were not the VM's current host's at the sync's epoch: never recorded as a generation",
        },
      ),
    }),
  ),
);

export const fleetReadState = component(
  'FleetReadState',
  of<FleetReadState>()(
    z.discriminatedUnion('status', [
      z.strictObject({ ...onHost, hostName: z.string(), status: z.literal('read'), ...stateFacts, vmUuid: uuid, why }),
      z.strictObject({
        ...onHost,
        hostName: z.string(),
        status: z.enum(['missing', 'failed']),
        reason,
        vmUuid: uuid,
        why,
      }),
    ]),
  ),
  'a state a fleet sync read, and why: its digest on disk differed from its row (changed), or its backup did',
);

export const fleetSyncHost = component(
  'FleetSyncHost',
  of<FleetSyncHost>()(
    z.strictObject({
      hostUuid: uuid,
      hostName: z.string(),
      listed: count,
      recorded: count,
      unchanged: countWith('recorded states whose digest and backup were already held: not read'),
      commands: count,
      bytesRead: countWith('bytes of the states read, decoded'),
      error: meta(z.string(), {
        description: 'the host could not be listed: none of its states was looked at',
      }).optional(),
      truncated: meta(z.literal(true), {
        description:
          `the agent's listing stopped short (${LISTING_BOUNDS}): the recorded states it did not show were stat'ed ` +
          'instead',
      }).optional(),
    }),
  ),
);

export const fleetSyncReport = component(
  'FleetSyncReport',
  of<FleetSyncReport>()(
    z.strictObject({
      operationId: uuid,
      hosts: z.array(fleetSyncHost),
      read: z.array(fleetReadState),
      missing: meta(
        z.array(
          of<FleetMissingState>()(
            z.strictObject({ vmUuid: uuid, hostUuid: uuid, hostName: z.string(), type: fileType, path }),
          ),
        ),
        { description: 'recorded states the listing did not show: not read (reconcile says more)' },
      ),
      fenced: meta(
        z.array(
          z.strictObject({
            ...onHost,
            vmUuid: uuid,
            hostName: z.string(),
            code: z.literal('fenced'),
            reason: z.string(),
          }),
        ),
        {
          description:
            "states of a VM's own host whose capture was refused: the VM moved, or its epoch rose, meanwhile",
        },
      ),
      backups: countWith('generations made (a capture identical to the newest generation makes none)'),
      totals: z.strictObject({
        recorded: count,
        unchanged: count,
        read: count,
        bytesRead: count,
        commands: count,
        failedHosts: count,
      }),
    }),
  ),
);

export const adoptedState = component(
  'AdoptedState',
  of<AdoptedState>()(
    z.discriminatedUnion('status', [
      z.strictObject({
        type: fileType,
        path,
        status: z.literal('adopted'),
        ...stateFacts,
        busy: meta(z.boolean(), { description: 'a running swtpm or QEMU holds it (recorded all the same)' }),
      }),
      z.strictObject({ type: fileType, path, status: z.literal('absent') }),
    ]),
  ),
);

export const adoptReport = component(
  'AdoptReport',
  of<AdoptReport>()(
    z.strictObject({
      operationId: uuid,
      vmUuid: uuid,
      vmName: z.string(),
      hostUuid: uuid,
      hostName: z.string(),
      states: z.array(adoptedState),
      backup: meta(syncReport.nullable(), { description: 'with `backup`: the sync that followed' }),
    }),
  ),
);

export const restoreReport = component(
  'RestoreReport',
  of<RestoreReport>()(
    z.strictObject({
      operationId: uuid,
      vmUuid: uuid,
      vmName: z.string(),
      hostUuid: uuid,
      hostName: z.string(),
      commands: count,
      error: meta(z.string().optional(), { description: 'why the host could not be reached or refused' }),
      generations: meta(z.array(z.strictObject({ type: fileType, generation: z.int().positive() })), {
        description: 'the generation written of each type',
      }),
      files: z.array(placedFile),
    }),
  ),
);

export const listEntry = component(
  'ListEntry',
  of<ListEntry>()(listEntrySchema),
  'a state on disk (a file or directory directly below a root): facts without contents',
);

const missingFields = { vmUuid: uuid, type: fileType, path, sha256, size };
export const missingFile = component('MissingFile', of<MissingFile>()(z.strictObject(missingFields)));
export const modifiedFile = component(
  'ModifiedFile',
  of<ModifiedFile>()(z.strictObject({ ...missingFields, onDisk: sha256 })),
);

export const reconcileReport = component(
  'ReconcileReport',
  of<ReconcileReport>()(
    z.strictObject({
      operationId: uuid,
      hostUuid: uuid,
      hostName: z.string(),
      roots: of<Roots>()(z.strictObject({ TpmState: path, NvRam: path })),
      listed: count,
      truncated: meta(z.literal(true), {
        description:
          `the agent's listing stopped short (${LISTING_BOUNDS}): orphans, unknown and busy are of the part listed; ` +
          "missing and modified are whole (unlisted rows were stat'ed)",
      }).optional(),
      orphans: meta(z.array(listEntry), { description: "hostfiles' own leftovers" }),
      unknown: meta(z.array(listEntry), { description: "never hostfiles' (libvirt's, an operator's)" }),
      busy: meta(z.array(listEntry), { description: 'unrecorded state in use: never scheduled' }),
      quarantined: meta(z.array(listEntry), {
        description: "trees the agent's crash recovery set aside (possibly a state's only copy): never scheduled",
      }),
      missing: z.array(missingFile),
      modified: z.array(modifiedFile),
      pending: countWith('states on disk already waiting in the outbox'),
      scheduled: meta(z.array(path), { description: 'with `apply`: the paths put in the outbox' }),
    }),
  ),
);

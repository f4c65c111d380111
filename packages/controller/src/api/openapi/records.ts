// The records the API answers (hosts, VMs, TPMs, files, backups, the outbox) and its error body, as closed schemas.
import { z } from 'zod';
import {
  BOOT_MODES,
  GENERATION_SOURCES,
  HOST_STATES,
  KEY_BINDING_STATES,
  OPERATION_KINDS,
  OPERATION_STATES,
  type BackupFile,
  type Host,
  type KeyBinding,
  type NamedOperation,
  type ListedPendingDeletion,
  type Tpm,
  type TpmWithBinding,
  type Vm,
  type VmHostFile,
} from '../../store/index.js';
import { API_ERROR_CODES, type ErrorBody } from '../errors.js';
import type { VmWithTpm } from '../routes/inventory.js';
import { component, count, fileType, meta, of, path, sha256, size, stateKind, time, uuid, uuidWith } from './shape.js';

export const errorBody = component(
  'Error',
  of<ErrorBody>()(
    z.strictObject({
      error: z.strictObject({
        code: z.enum(API_ERROR_CODES),
        message: z.string(),
        /** only for a body that is not valid: each problem, at a dotted path ('' for the whole body) */
        problems: z.array(z.strictObject({ path: z.string(), message: z.string() })).optional(),
      }),
    }),
  ),
);

export const host = component(
  'Host',
  of<Host>()(
    z.strictObject({
      uuid,
      name: z.string(),
      url: z.string(),
      publicKey: meta(z.string(), { description: "the agent's pinned Ed25519 public key, base64" }),
      keyId: z.string(),
      certificate: meta(z.string().nullable(), {
        description:
          "the agent's pinned TLS certificate (PEM), derived from its key: the only one its https URL is trusted with; " +
          'null for plain HTTP',
      }),
      state: z.enum(HOST_STATES),
      lastSeenAt: time.nullable(),
      createdAt: time,
    }),
  ),
);

const vmFields = {
  uuid,
  name: z.string(),
  hostUuid: meta(uuid.nullable(), { description: 'the host the VM lives on now; null when it is placed nowhere' }),
  bootMode: z.enum(BOOT_MODES),
  secureBoot: z.boolean(),
  epoch: meta(z.int().nonnegative(), {
    description: "the fencing epoch of the VM's ownership by its host: rises on every move, restore and recover",
  }),
  createdAt: time,
};
export const vm = component('Vm', of<Vm>()(z.strictObject(vmFields)));

export const tpm = component('Tpm', of<Tpm>()(z.strictObject({ uuid, vmUuid: uuid, createdAt: time })));

export const keyBinding = component(
  'KeyBinding',
  of<KeyBinding>()(
    z.strictObject({
      tpmUuid: uuid,
      vmUuid: uuid,
      keyProvider: z.string(),
      state: z.enum(KEY_BINDING_STATES),
      createdAt: time,
    }),
  ),
);

// One closed object, not `allOf` of the closed Vm and more: under `additionalProperties: false` nothing could match.
export const vmWithTpm = component(
  'VmWithTpm',
  of<VmWithTpm>()(
    z.strictObject({
      ...vmFields,
      tpm: z.strictObject({ uuid, createdAt: time, binding: keyBinding.nullable() }).nullable(),
    }),
  ),
  'a VM with its TPM (null without one) and the TPM key binding',
);

export const tpmWithBinding = component(
  'TpmWithBinding',
  of<TpmWithBinding>()(z.strictObject({ tpm, binding: keyBinding })),
);

export const vmHostFile = component(
  'VmHostFile',
  of<VmHostFile>()(
    z.strictObject({
      uuid,
      vmUuid: uuid,
      hostUuid: uuid,
      type: fileType,
      path,
      kind: stateKind,
      sha256,
      size,
      lastSyncAt: time,
    }),
  ),
  "a VM's state recorded on a host: a file (NVRAM) or a directory (a vTPM state)",
);

export const backupFile = component(
  'BackupFile',
  of<BackupFile>()(
    z.strictObject({
      uuid,
      vmUuid: uuid,
      type: fileType,
      generation: meta(z.int().positive(), { description: 'numbered per VM and type from 1, never reused' }),
      kind: stateKind,
      sha256,
      size,
      source: z.enum(GENERATION_SOURCES),
      hostUuid: uuidWith('the host it was captured from; null once that host was removed').nullable(),
      capturedAt: time,
    }),
  ),
  "the controller's copy of a VM's state of one type, one generation of it (metadata only)",
);

export const pendingDeletion = component(
  'PendingDeletion',
  of<ListedPendingDeletion>()(
    z.strictObject({
      id: count,
      hostUuid: uuid,
      type: fileType,
      path,
      vmUuid: uuidWith('the nil uuid for unknown state that reconcile scheduled'),
      vmName: meta(z.string().nullable(), {
        description:
          "the VM's name now; once its row is gone, the name it had when the deletion was scheduled; null for " +
          'state of no VM known (the nil uuid), and for a VM destroyed before names were kept',
      }),
      vmDestroyed: meta(z.boolean(), { description: "the VM's row is gone (destroyed): its deletions wait on" }),
      tpmUuid: uuid.nullable(),
      attempts: count,
      nextAttemptAt: time,
      lastError: z.string().nullable(),
      expectSha256: meta(sha256.nullable(), {
        description: 'delete only while the path holds this digest; null: whatever is there',
      }),
      createdAt: time,
    }),
  ),
);

export const operation = component(
  'Operation',
  of<NamedOperation>()(
    z.strictObject({
      id: uuid,
      kind: meta(z.string(), { description: OPERATION_KINDS.join(', ') }),
      subject: meta(z.string(), {
        description: "what it is about: a VM's uuid (a removal's VMs', comma-separated), a host's, or `fleet`",
      }),
      subjectName: meta(z.string(), {
        description:
          "the subject as an operator reads it: each VM's or host's name while its row exists, else its uuid (a " +
          'destroyed VM, a removed host)',
      }),
      step: z.string(),
      state: meta(z.enum(OPERATION_STATES), {
        description:
          'running: in flight, or left by a stopped controller for resume; done; failed (the report says why)',
      }),
      input: meta(z.unknown(), { description: 'what the flow was asked: enough to repeat it (never file contents)' }),
      report: meta(z.unknown(), { description: "the flow's report (its `error` says why it failed); null until one" }),
      createdAt: time,
      updatedAt: time,
    }),
  ),
  'one journaled flow',
);

export const hostList = component('HostList', z.strictObject({ hosts: z.array(host) }));
export const vmList = component('VmList', z.strictObject({ vms: z.array(vmWithTpm) }));
export const fileList = component('FileList', z.strictObject({ files: z.array(vmHostFile) }));
export const backupList = component('BackupList', z.strictObject({ backups: z.array(backupFile) }));
export const pendingList = component('PendingList', z.strictObject({ pending: z.array(pendingDeletion) }));
export const operationList = component(
  'OperationList',
  z.strictObject({ operations: z.array(operation) }),
  'newest first',
);
export const health = component('Health', z.strictObject({ status: z.literal('ok') }));

// The request bodies and queries, strict (unknown fields refused). The OpenAPI document derives its request schemas
// from these.
import { FILE_TYPES, MAX_ENTRIES, MAX_PATH_LENGTH, UUID_PATTERN } from '@hostfiles/shared';
import { z } from 'zod';
import { BOOT_MODES, OPERATION_STATES } from '../store/index.js';
import { MAX_OPERATIONS_LIMIT } from './limits.js';

const name = z.string().min(1).max(200);
/** A VM or host as the CLI names it: its name or its uuid. */
const ref = z.string().min(1).max(200);
const path = z.string().min(1).max(MAX_PATH_LENGTH);
/** libvirt's domain uuid as `virsh domuuid` prints it: any version, lowercase hex. */
const domainUuid = z.string().regex(UUID_PATTERN, 'a uuid in lowercase hex');

export const newHostBody = z.strictObject({
  name,
  /** https:// (agents serve TLS by default); http:// only on loopback unless allowPlainHttp */
  url: z.string().min(1).max(2048),
  /** the agent's base64 public key or its sha256:<64 hex> fingerprint, as `hostfiles-agent info` prints it */
  expectKey: z.string().min(1).max(200).optional(),
  /** pin whatever key the agent presents (needed when expectKey is absent) */
  trustOnFirstUse: z.boolean().optional(),
  /** http:// to an address that is not loopback */
  allowPlainHttp: z.boolean().optional(),
});

export const newVmBody = z.strictObject({
  name,
  host: ref,
  bootMode: z.enum(BOOT_MODES),
  secureBoot: z.boolean(),
  /** libvirt's domain uuid; a new random one when absent */
  uuid: domainUuid.optional(),
});

export const newTpmBody = z.strictObject({
  keyProvider: z.string().min(1).max(200),
});

export const moveVmBody = z.strictObject({
  /** the host the VM lives on now */
  host: ref,
});

/** Where each type of state is on the host; a type left out takes libvirt's layout (adopt) or the known path. */
const statePaths = z.strictObject({
  TpmState: path.optional(),
  NvRam: path.optional(),
});

export const adoptVmBody = z.strictObject({
  /** the host the state is on; default: the VM's current host */
  host: ref.optional(),
  /** default: `<TpmState root>/<vm uuid>` and, for UEFI, `<NvRam root>/<vm name>_VARS.fd` */
  paths: statePaths.optional(),
  /** sync the VM right after, so its backups hold what was adopted */
  backup: z.boolean().optional(),
});

export const restoreVmBody = z.strictObject({
  /** the host to write on; default: the VM's current host */
  host: ref.optional(),
  /** where each backup goes; default: the VM's recorded path on that host, else its latest path on any host */
  paths: statePaths.optional(),
  /** only this type's newest backup, the VM's state of the other type left as it is; default: every type */
  type: z.enum(FILE_TYPES).optional(),
  /** write over state hostfiles does not know at a path the VM does not hold there yet */
  force: z.boolean().optional(),
});

export const reconcileBody = z
  .strictObject({
    /** put hostfiles' own orphans in the outbox */
    apply: z.boolean().optional(),
    /** with `apply`: unknown state too (never state in use) */
    includeUnknown: z.boolean().optional(),
  })
  .refine((body) => body.includeUnknown !== true || body.apply === true, {
    message: 'includeUnknown goes with apply',
    path: ['includeUnknown'],
  });

/** The hosts a fleet sync lists (names or uuids); every host when absent. */
export const fleetSyncBody = z.strictObject({ hosts: z.array(ref).min(1).max(10_000).optional() });

/** One call may name many VMs: their files are grouped per host, one command per host. */
export const removeTpmsBody = z.strictObject({
  vms: z.array(ref).min(1).max(10_000),
  /** go ahead although a VM's swtpm runs: the deletion of its state waits in the outbox until it stops */
  force: z.boolean().optional(),
});

/** A state to write: `content` for a file, or `entries` for a directory (a vTPM state), never both. */
export const writeFileBody = z
  .strictObject({
    vm: ref,
    type: z.enum(FILE_TYPES),
    path,
    /** a file's bytes: standard base64, padded */
    content: z.base64().optional(),
    /** a directory's files, each at a path relative to it, the whole state */
    entries: z
      .array(z.strictObject({ path, content: z.base64() }))
      .min(1)
      .max(MAX_ENTRIES)
      .optional(),
    /** the VM's current host when absent */
    host: ref.optional(),
    /** write over state hostfiles does not know at a path the VM does not hold yet */
    force: z.boolean().optional(),
  })
  .refine((body) => (body.content === undefined) !== (body.entries === undefined), {
    message: 'give content (a file) or entries (a directory), one of the two',
  });

/** `DELETE /v1/vms/{vm}?force=true`: destroy a running VM all the same. */
export const destroyVmQuery = z.strictObject({
  force: z.enum(['true', 'false']).optional(),
});

export { DEFAULT_OPERATIONS_LIMIT, MAX_OPERATIONS_LIMIT } from './limits.js';

/** `GET /v1/operations?state=failed&kind=file.write&limit=20`: the journal, newest first. */
export const listOperationsQuery = z.strictObject({
  state: z.enum(OPERATION_STATES).optional(),
  kind: z.string().min(1).max(200).optional(),
  limit: z
    .string()
    .regex(/^\d{1,4}$/, `a whole number from 1 to ${MAX_OPERATIONS_LIMIT}`)
    // Only on digits: what the pattern refused is said once, not again here.
    .refine((value) => !/^\d{1,4}$/.test(value) || (Number(value) >= 1 && Number(value) <= MAX_OPERATIONS_LIMIT), {
      message: `a whole number from 1 to ${MAX_OPERATIONS_LIMIT}`,
    })
    .optional(),
});

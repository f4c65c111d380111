// The request bodies, strict (unknown fields refused). openapi.ts derives its request schemas from these.
import { FILE_TYPES, MAX_ENTRIES, MAX_PATH_LENGTH } from '@hostfiles/shared';
import { z } from 'zod';
import { BOOT_MODES } from '../store/index.js';

const name = z.string().min(1).max(200);
/** A VM or host as the CLI names it: its name or its uuid. */
const ref = z.string().min(1).max(200);

export const newHostBody = z.strictObject({
  name,
  url: z.string().min(1).max(2048),
});

export const newVmBody = z.strictObject({
  name,
  host: ref,
  bootMode: z.enum(BOOT_MODES),
  secureBoot: z.boolean(),
});

export const newTpmBody = z.strictObject({
  keyProvider: z.string().min(1).max(200),
});

/** One call may name many VMs: their files are grouped per host, one command per host. */
export const removeTpmsBody = z.strictObject({
  vms: z.array(ref).min(1).max(10_000),
});

/** A state to write: `content` for a file, or `entries` for a directory (a vTPM state), never both. */
export const writeFileBody = z
  .strictObject({
    vm: ref,
    type: z.enum(FILE_TYPES),
    path: z.string().min(1).max(MAX_PATH_LENGTH),
    /** a file's bytes: standard base64, padded */
    content: z.base64().optional(),
    /** a directory's files, each at a path relative to it, the whole state */
    entries: z
      .array(z.strictObject({ path: z.string().min(1).max(MAX_PATH_LENGTH), content: z.base64() }))
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

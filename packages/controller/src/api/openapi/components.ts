// `components.schemas`: every schema given an id (records.ts, reports.ts, and the request bodies here), in JSON Schema
// draft 2020-12 (which OpenAPI 3.1 speaks), each use of one inside another a `$ref`.
import { z } from 'zod';
import {
  adoptVmBody,
  fleetSyncBody,
  moveVmBody,
  newHostBody,
  newTpmBody,
  newVmBody,
  reconcileBody,
  removeTpmsBody,
  restoreVmBody,
  writeFileBody,
} from '../schemas.js';
// For their side effect: every record and report schema is registered once these modules ran.
import './records.js';
import './reports.js';
import { component, SCHEMA_META } from './shape.js';

/** The request bodies: the very schemas the routes check, by the names the document gives them. */
const REQUEST_BODIES: readonly (readonly [string, z.ZodType, string])[] = [
  ['NewHost', newHostBody, "a host's name and its agent's URL"],
  ['NewVm', newVmBody, "a VM; `uuid`: libvirt's domain uuid in lowercase (a new random one when absent)"],
  ['NewTpm', newTpmBody, 'the key provider the TPM is bound to'],
  ['MoveVm', moveVmBody, 'the host the VM lives on now'],
  ['AdoptVm', adoptVmBody, "where the state is (default: the VM's host, libvirt's layout); `backup`: sync after"],
  ['FleetSync', fleetSyncBody, 'the hosts to sync (names or uuids); every host when absent'],
  [
    'RestoreVm',
    restoreVmBody,
    "where the backups go (default: the VM's host, its known paths); `type`: that type's only; `force`: write over",
  ],
  [
    'Reconcile',
    reconcileBody,
    '`apply`: schedule the orphans; `includeUnknown` (with `apply` only): unknown state too',
  ],
  ['RemoveTpms', removeTpmsBody, 'the VMs (names or uuids); `force`: go ahead although a VM runs'],
  ['WriteFile', writeFileBody, 'a state: `content` (a file) or `entries` (a directory), one of the two'],
];
for (const [id, schema, description] of REQUEST_BODIES) component(id, schema, description);

export type Schema = Readonly<Record<string, unknown>>;

/** Every component, converted; called once the modules that define them have run. */
export function componentSchemas(): Record<string, Schema> {
  const { schemas } = z.toJSONSchema(SCHEMA_META, {
    metadata: SCHEMA_META,
    target: 'draft-2020-12',
    uri: (id) => `#/components/schemas/${id}`,
  });
  // `$schema` and `$id` belong to a standalone document: in the OpenAPI document they would rebase every `$ref`.
  const standalone = new Set(['$schema', '$id']);
  return Object.fromEntries(
    Object.entries(schemas).map(([id, schema]) => [
      id,
      Object.fromEntries(Object.entries(schema).filter(([keyword]) => !standalone.has(keyword))),
    ]),
  );
}

/** `{ $ref }` to the component `schema` is. */
export function ref(schema: z.ZodType): Schema {
  const id = SCHEMA_META.get(schema)?.id;
  if (id === undefined) throw new Error('not a component schema');
  return { $ref: `#/components/schemas/${id}` };
}

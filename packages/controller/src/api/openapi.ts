// The OpenAPI 3.1 description served at /v1/openapi.json. Request schemas come from the very zod schemas the routes
// check; response schemas are written here. api/app.test.ts checks that it names exactly the routes the app has.
import { FILE_TYPES } from '@hostfiles/shared';
import { z } from 'zod';
import { BOOT_MODES, HOST_STATES, KEY_BINDING_STATES } from '../store/index.js';
import { API_ERROR_CODES } from './errors.js';
import { newHostBody, newTpmBody, newVmBody, removeTpmsBody, writeFileBody } from './schemas.js';

type Schema = Readonly<Record<string, unknown>>;

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const nullable = (schema: Schema): Schema => ({ oneOf: [schema, { type: 'null' }] });
const array = (items: Schema): Schema => ({ type: 'array', items });
const STRING = { type: 'string' } as const;
const INTEGER = { type: 'integer' } as const;
const TIME = { type: 'integer', description: 'milliseconds since the Unix epoch' } as const;
const UUID = { type: 'string', format: 'uuid' } as const;

/** An object whose every property is required unless named in `optional`; unknown properties are never sent. */
function object(properties: Record<string, Schema>, optional: readonly string[] = []): Schema {
  const required = Object.keys(properties).filter((key) => !optional.includes(key));
  return { type: 'object', properties, required, additionalProperties: false };
}

/** The JSON Schema of a zod request schema, without `$schema`: OpenAPI 3.1 already speaks draft 2020-12. */
function requestSchema(schema: z.ZodType): Schema {
  const json: Record<string, unknown> = { ...z.toJSONSchema(schema, { target: 'draft-2020-12' }) };
  delete json['$schema'];
  return json;
}

const SCHEMAS: Record<string, Schema> = {
  Error: object({
    error: object(
      {
        code: { type: 'string', enum: [...API_ERROR_CODES] },
        message: STRING,
        problems: array(object({ path: STRING, message: STRING })),
      },
      ['problems'],
    ),
  }),
  Host: object({
    uuid: UUID,
    name: STRING,
    url: STRING,
    publicKey: { type: 'string', description: "the agent's pinned Ed25519 public key, base64" },
    keyId: STRING,
    state: { type: 'string', enum: [...HOST_STATES] },
    lastSeenAt: nullable(TIME),
    createdAt: TIME,
  }),
  Vm: object({
    uuid: UUID,
    name: STRING,
    hostUuid: nullable(UUID),
    bootMode: { type: 'string', enum: [...BOOT_MODES] },
    secureBoot: { type: 'boolean' },
    createdAt: TIME,
  }),
  Tpm: object({ uuid: UUID, vmUuid: UUID, createdAt: TIME }),
  KeyBinding: object({
    tpmUuid: UUID,
    vmUuid: UUID,
    keyProvider: STRING,
    state: { type: 'string', enum: [...KEY_BINDING_STATES] },
    createdAt: TIME,
  }),
  VmWithTpm: {
    allOf: [
      ref('Vm'),
      {
        type: 'object',
        properties: {
          tpm: nullable(object({ uuid: UUID, createdAt: TIME, binding: nullable(ref('KeyBinding')) })),
        },
        required: ['tpm'],
      },
    ],
  },
  TpmWithBinding: object({ tpm: ref('Tpm'), binding: ref('KeyBinding') }),
  VmHostFile: object({
    uuid: UUID,
    vmUuid: UUID,
    hostUuid: UUID,
    type: { type: 'string', enum: [...FILE_TYPES] },
    path: STRING,
    sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    size: INTEGER,
    lastSyncAt: TIME,
  }),
  PendingDeletion: object({
    id: INTEGER,
    hostUuid: UUID,
    type: { type: 'string', enum: [...FILE_TYPES] },
    path: STRING,
    vmUuid: UUID,
    tpmUuid: nullable(UUID),
    attempts: INTEGER,
    nextAttemptAt: TIME,
    lastError: nullable(STRING),
    createdAt: TIME,
  }),
  HostReport: object(
    {
      hostUuid: UUID,
      hostName: STRING,
      commands: INTEGER,
      error: { type: 'string', description: 'why the host could not be reached, or refused' },
      files: array(
        object(
          {
            hostUuid: UUID,
            type: { type: 'string', enum: [...FILE_TYPES] },
            path: STRING,
            status: { type: 'string', enum: ['deleted', 'absent', 'unconfirmed'] },
            reason: { type: 'string', description: 'only when unconfirmed' },
          },
          ['reason'],
        ),
      ),
    },
    ['error'],
  ),
  PendingFile: object({
    hostUuid: UUID,
    type: { type: 'string', enum: [...FILE_TYPES] },
    path: STRING,
    vmUuid: UUID,
    reason: STRING,
  }),
  RemovalReport: object({
    operationId: UUID,
    vms: array(
      object({
        vmUuid: UUID,
        vmName: STRING,
        tpmUuid: UUID,
        nvram: { type: 'string', enum: ['deleted', 'kept: secure boot', 'none: legacy boot'] },
        binding: { type: 'string', enum: ['detached', 'detaching'] },
      }),
    ),
    hosts: array(ref('HostReport')),
    commands: INTEGER,
    pending: array(ref('PendingFile')),
  }),
  DestroyReport: object({
    operationId: UUID,
    vmUuid: UUID,
    vmName: STRING,
    tpm: nullable(object({ tpmUuid: UUID, binding: { type: 'string', enum: ['detached', 'detaching'] } })),
    hosts: array(ref('HostReport')),
    commands: INTEGER,
    pending: array(ref('PendingFile')),
  }),
  RetryReport: object({
    attempted: INTEGER,
    confirmed: INTEGER,
    stillPending: INTEGER,
    detached: array(UUID),
    hosts: array(ref('HostReport')),
  }),
  NewHost: requestSchema(newHostBody),
  NewVm: requestSchema(newVmBody),
  NewTpm: requestSchema(newTpmBody),
  RemoveTpms: requestSchema(removeTpmsBody),
  WriteFile: requestSchema(writeFileBody),
};

const json = (schema: Schema): Schema => ({ content: { 'application/json': { schema } } });
const ok = (description: string, schema: Schema): Schema => ({ description, ...json(schema) });
const body = (name: string): Schema => ({ required: true, ...json(ref(name)) });
const failure = (description: string): Schema => ({ description, ...json(ref('Error')) });
const VM_PARAM = { name: 'vm', in: 'path', required: true, description: "the VM's name or uuid", schema: STRING };

/** The error answers every route but health may give; each operation adds its own. */
const COMMON_ERRORS = {
  '401': failure('no or a wrong bearer token (unauthorized)'),
  '413': failure('the body is over the limit (too_large)'),
  '500': failure('internal error'),
};
const BAD_REQUEST = { '400': failure('the body is not valid JSON of the right shape; `problems` says where') };
const NOT_FOUND = { '404': failure('no such VM or host (not_found)') };
const CONFLICT = { '409': failure('a conflict: a name taken, a TPM already there, a changed agent key') };
const AGENT = { '502': failure('an agent was unreachable or refused (agent_unreachable, agent_refused)') };

function operation(
  operationId: string,
  summary: string,
  responses: Record<string, Schema>,
  extra: Record<string, unknown> = {},
): Schema {
  return { operationId, summary, ...extra, responses: { ...responses, ...COMMON_ERRORS } };
}

export const OPENAPI_DOCUMENT = {
  openapi: '3.1.0',
  info: {
    title: 'hostfiles controller',
    version: '1.0.0',
    description:
      'Keeps the vTPM state and NVRAM files of VMs true to the controller database across KVM hosts. ' +
      'Every route but GET /v1/health needs `Authorization: Bearer <token>`.',
  },
  security: [{ bearer: [] }],
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    schemas: SCHEMAS,
  },
  paths: {
    '/v1/health': {
      get: {
        operationId: 'health',
        summary: 'liveness; no token needed',
        security: [],
        responses: { '200': ok('alive', object({ status: { type: 'string', const: 'ok' } })) },
      },
    },
    '/v1/openapi.json': {
      get: operation('openapi', 'this document', { '200': ok('the OpenAPI document', { type: 'object' }) }),
    },
    '/v1/hosts': {
      get: operation('listHosts', 'list the hosts', { '200': ok('the hosts', object({ hosts: array(ref('Host')) })) }),
      post: operation(
        'addHost',
        "add a host: fetch its agent's /v1/info and pin the agent's key and host uuid",
        { '201': ok('the host added', ref('Host')), ...BAD_REQUEST, ...CONFLICT, ...AGENT },
        { requestBody: body('NewHost') },
      ),
    },
    '/v1/vms': {
      get: operation('listVms', 'list the VMs with their TPM and key binding', {
        '200': ok('the VMs', object({ vms: array(ref('VmWithTpm')) })),
      }),
      post: operation(
        'addVm',
        'add a VM on a host',
        { '201': ok('the VM added', ref('Vm')), ...BAD_REQUEST, ...NOT_FOUND, ...CONFLICT },
        { requestBody: body('NewVm') },
      ),
    },
    '/v1/vms/{vm}': {
      delete: operation(
        'destroyVm',
        'destroy a VM: delete all its files on every host, then its rows; unconfirmed files stay pending',
        { '200': ok('what was deleted and what is pending', ref('DestroyReport')), ...NOT_FOUND, ...CONFLICT },
        { parameters: [VM_PARAM] },
      ),
    },
    '/v1/vms/{vm}/tpm': {
      post: operation(
        'addTpm',
        'give a VM a TPM, bound to a key provider',
        { '201': ok('the TPM and its key binding', ref('TpmWithBinding')), ...BAD_REQUEST, ...NOT_FOUND, ...CONFLICT },
        { parameters: [VM_PARAM], requestBody: body('NewTpm') },
      ),
    },
    '/v1/vms/{vm}/files': {
      get: operation(
        'listVmFiles',
        "list a VM's files recorded on hosts",
        { '200': ok('the files', object({ files: array(ref('VmHostFile')) })), ...NOT_FOUND },
        { parameters: [VM_PARAM] },
      ),
    },
    '/v1/tpms/remove': {
      post: operation(
        'removeTpms',
        'remove the TPMs of one or more VMs in one flow (one command per host); hosts down leave deletions pending',
        {
          '200': ok('per host, per file, the outcome; what is pending and why', ref('RemovalReport')),
          ...BAD_REQUEST,
          ...NOT_FOUND,
          ...CONFLICT,
        },
        { requestBody: body('RemoveTpms') },
      ),
    },
    '/v1/files': {
      post: operation(
        'writeFile',
        "write a VM's file onto a host through its agent and record it; cancels a pending deletion at that path",
        { '201': ok('the file as recorded', ref('VmHostFile')), ...BAD_REQUEST, ...NOT_FOUND, ...CONFLICT, ...AGENT },
        { requestBody: body('WriteFile') },
      ),
    },
    '/v1/pending': {
      get: operation('listPending', 'list the deletions not yet confirmed by their host', {
        '200': ok('the outbox', object({ pending: array(ref('PendingDeletion')) })),
      }),
    },
    '/v1/retry': {
      post: operation('retry', 'one pass over every pending deletion, due or not; no body', {
        '200': ok('what was confirmed and what is still pending', ref('RetryReport')),
      }),
    },
  },
} as const;

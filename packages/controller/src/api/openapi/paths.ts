// `paths`: every route, its parameters, its request body, and every answer it gives with the schema of each.
import {
  DEFAULT_OPERATIONS_LIMIT,
  listOperationsQuery,
  MAX_OPERATIONS_LIMIT,
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
import { ref } from './components.js';
import { FORCE, HOST, json, operation, VM } from './operation.js';
import * as records from './records.js';
import * as reports from './reports.js';

const BAD_BODY = 'the body is not valid JSON of the right shape (`problems` says where), or the request is refused';
const NO_VM = 'no such VM (not_found)';
const AGENT = 'an agent was unreachable, or refused the command (agent_unreachable, agent_refused)';

export const PATHS = {
  '/v1/health': {
    get: {
      operationId: 'health',
      summary: 'liveness; no token needed',
      security: [],
      responses: { '200': { description: 'alive', ...json(ref(records.health)) } },
    },
  },
  '/v1/openapi.json': {
    get: operation({
      operationId: 'openapi',
      summary: 'this document',
      ok: {
        status: 200,
        description: 'the OpenAPI 3.1 document',
        // Not closed: this is the document itself, described fully by the OpenAPI 3.1 schema.
        schema: {
          type: 'object',
          properties: {
            openapi: { type: 'string', const: '3.1.0' },
            info: { type: 'object' },
            paths: { type: 'object' },
            components: { type: 'object' },
          },
          required: ['openapi', 'info', 'paths', 'components'],
        },
      },
    }),
  },
  '/v1/hosts': {
    get: operation({
      operationId: 'listHosts',
      summary: 'list the hosts',
      ok: { status: 200, description: 'the hosts', schema: ref(records.hostList) },
    }),
    post: operation({
      operationId: 'addHost',
      summary: "add a host: pin its agent's key, host uuid and TLS certificate",
      description:
        "The agent's key must be the one expected (`expectKey`: its public key or sha256 fingerprint, read on the host " +
        'with `hostfiles-agent info`), or `trustOnFirstUse` must say to pin whatever it presents. Over https the ' +
        "certificate's key, the key /v1/info names and the expected key must be one key, and the certificate the one " +
        'the agent derives from it. http:// is refused for an address that is not loopback unless `allowPlainHttp`.',
      body: newHostBody,
      ok: { status: 201, description: 'the host added', schema: ref(records.host) },
      errors: {
        400: BAD_BODY,
        409:
          'a host of that name or uuid exists already (conflict), or the agent does not hold the expected key ' +
          '(host_key_mismatch): nothing stored',
        502: AGENT,
      },
    }),
  },
  '/v1/hosts/{host}/reconcile': {
    post: operation({
      operationId: 'reconcileHost',
      summary: "list a host's states and compare them with the database; with `apply`, schedule the orphans' deletion",
      description:
        'State no row and no pending deletion accounts for is an orphan when hostfiles wrote it, unknown otherwise; ' +
        'state in use is listed as busy and never touched. Scheduled deletions are conditional on the digest seen.',
      parameters: [HOST],
      body: reconcileBody,
      bodyOptional: true,
      ok: {
        status: 200,
        description: 'what is on the host against what is recorded',
        schema: ref(reports.reconcileReport),
      },
      errors: { 400: BAD_BODY, 404: 'no such host (not_found)', 502: AGENT },
    }),
  },
  '/v1/vms': {
    get: operation({
      operationId: 'listVms',
      summary: 'list the VMs with their TPM and key binding',
      ok: { status: 200, description: 'the VMs', schema: ref(records.vmList) },
    }),
    post: operation({
      operationId: 'addVm',
      summary: "add a VM on a host, with libvirt's domain uuid if given",
      body: newVmBody,
      ok: { status: 201, description: 'the VM added', schema: ref(records.vm) },
      errors: { 400: BAD_BODY, 404: 'no such host (not_found)', 409: 'a VM of that name or uuid exists (conflict)' },
    }),
  },
  '/v1/vms/{vm}': {
    delete: operation({
      operationId: 'destroyVm',
      summary: 'destroy a VM: delete all its states on every host, then its rows; unconfirmed deletions stay pending',
      parameters: [VM, FORCE],
      ok: { status: 200, description: 'what was deleted and what is pending', schema: ref(reports.destroyReport) },
      errors: {
        400: 'the query is not valid (bad_request)',
        404: NO_VM,
        409: 'the VM runs: its state is in use (busy); pass force=true to go ahead',
      },
    }),
  },
  '/v1/vms/{vm}/tpm': {
    post: operation({
      operationId: 'addTpm',
      summary: 'give a VM a TPM, bound to a key provider',
      parameters: [VM],
      body: newTpmBody,
      ok: { status: 201, description: 'the TPM and its key binding', schema: ref(records.tpmWithBinding) },
      errors: { 400: BAD_BODY, 404: NO_VM, 409: 'the VM has a TPM already (conflict)' },
    }),
  },
  '/v1/vms/{vm}/files': {
    get: operation({
      operationId: 'listVmFiles',
      summary: "list a VM's states recorded on hosts",
      parameters: [VM],
      ok: { status: 200, description: 'the states', schema: ref(records.fileList) },
      errors: { 404: NO_VM },
    }),
  },
  '/v1/vms/{vm}/backups': {
    get: operation({
      operationId: 'listVmBackups',
      summary: "list a VM's backups (one per type), without their contents",
      parameters: [VM],
      ok: { status: 200, description: 'the backups', schema: ref(records.backupList) },
      errors: { 404: NO_VM },
    }),
  },
  '/v1/vms/{vm}/move': {
    post: operation({
      operationId: 'moveVm',
      summary: 'record that a VM now lives on another host (libvirt moved it); nothing on any host changes',
      parameters: [VM],
      body: moveVmBody,
      ok: { status: 200, description: 'where the VM was, where it is', schema: ref(reports.moveReport) },
      errors: { 400: BAD_BODY, 404: 'no such VM or host (not_found)' },
    }),
  },
  '/v1/vms/{vm}/adopt': {
    post: operation({
      operationId: 'adoptVm',
      summary: 'register state already on a host (libvirt made it) without copying it; optionally back it up at once',
      parameters: [VM],
      body: adoptVmBody,
      bodyOptional: true,
      ok: { status: 200, description: 'each state adopted or absent', schema: ref(reports.adoptReport) },
      errors: {
        400: `${BAD_BODY}: a path not absolute and normalized, or outside the agent's roots`,
        404: 'no such VM or host, or no state of the VM at any of the paths (not_found)',
        409: "a path is another VM's state, or the VM's state of that type is recorded elsewhere (conflict)",
        502: AGENT,
      },
    }),
  },
  '/v1/vms/{vm}/sync': {
    post: operation({
      operationId: 'syncVm',
      summary: "read a VM's states back from their hosts into the controller's backups; no body",
      description: 'A state that cannot be read is reported, not backed up; its earlier backup is kept (`notUpdated`).',
      parameters: [VM],
      ok: { status: 200, description: 'what each read gave, the backups updated', schema: ref(reports.syncReport) },
      errors: { 404: NO_VM },
    }),
  },
  '/v1/sync': {
    post: operation({
      operationId: 'syncFleet',
      summary: "sync the fleet (or the hosts named): each host's states listed, only the changed ones read back",
      description:
        'Each host lists its states with their digests; a recorded state is read only when its digest differs from its ' +
        "row's, or its VM's backup holds another digest. A host that cannot be listed is reported (`hosts[].error`), " +
        'its states left as they were; 200 whatever each host gave.',
      body: fleetSyncBody,
      bodyOptional: true,
      ok: { status: 200, description: 'per host, what was listed and read', schema: ref(reports.fleetSyncReport) },
      errors: { 400: BAD_BODY, 404: 'no such host (not_found)' },
    }),
  },
  '/v1/vms/{vm}/restore': {
    post: operation({
      operationId: 'restoreVm',
      summary: "write a VM's backups onto a host (its current one by default) and record them",
      description:
        "A type goes to the path given, else the VM's recorded path on that host, else libvirt's layout below the " +
        "host's roots, else its latest path elsewhere. Every backup goes in one command (with `type`, that type's " +
        'alone: the state of the other type is not touched); each state written, ' +
        'failed, or of unknown outcome is reported (200 whatever each outcome: read `files[].status`).',
      parameters: [VM],
      body: restoreVmBody,
      bodyOptional: true,
      ok: { status: 200, description: 'the outcome of each state', schema: ref(reports.restoreReport) },
      errors: {
        400: `${BAD_BODY}: no path known or given, a path not valid or outside the agent's roots, a path for a type not restored`,
        404: 'no such VM or host, or the VM has no backup (of `type`) (not_found)',
        409: "a path is another VM's state, or not the VM's recorded one there, or the backup is damaged (conflict)",
        502: "the host could not be asked where libvirt's layout is (agent_unreachable, agent_refused)",
      },
    }),
  },
  '/v1/tpms/remove': {
    post: operation({
      operationId: 'removeTpms',
      summary:
        'remove the TPMs of one or more VMs in one flow (one command per host); hosts down leave deletions pending',
      body: removeTpmsBody,
      ok: {
        status: 200,
        description: 'per host, per state, the outcome; what is pending and why',
        schema: ref(reports.removalReport),
      },
      errors: {
        400: BAD_BODY,
        404: 'no such VM, or a VM without a TPM (not_found)',
        409: 'a VM runs: its state is in use (busy); pass force to go ahead',
      },
    }),
  },
  '/v1/files': {
    post: operation({
      operationId: 'writeFile',
      summary: "write a VM's state (a file, or a directory's entries) onto a host through its agent and record it",
      description:
        "Refused before anything is sent: another VM's path, a path inside or around one, and (without force) a " +
        "new path where the host holds state hostfiles does not know. The VM's earlier path of that type is deleted " +
        'through the outbox; a pending deletion at the path is cancelled.',
      body: writeFileBody,
      ok: { status: 201, description: 'the state as written and recorded', schema: ref(reports.writeFileReport) },
      errors: {
        400: BAD_BODY,
        404: 'no such VM or host (not_found)',
        409: "another VM's state, unknown state at the path, the state in use (busy), or the agent refused (conflict)",
        502: 'the agent could not be reached, or the outcome is unknown (agent_unreachable)',
      },
    }),
  },
  '/v1/pending': {
    get: operation({
      operationId: 'listPending',
      summary: 'list the deletions not yet confirmed by their host',
      ok: { status: 200, description: 'the outbox', schema: ref(records.pendingList) },
    }),
  },
  '/v1/operations': {
    get: operation({
      operationId: 'listOperations',
      summary: 'list the journaled operations, newest first (by creation, then id)',
      parameters: [
        {
          name: 'state',
          in: 'query',
          required: false,
          description: 'only operations in this state',
          schema: { type: 'string', enum: listOperationsQuery.shape.state.unwrap().options },
        },
        {
          name: 'kind',
          in: 'query',
          required: false,
          description: 'only operations of this kind (tpm.remove, vm.destroy, file.write, ...)',
          schema: { type: 'string', minLength: 1, maxLength: 200 },
        },
        {
          name: 'limit',
          in: 'query',
          required: false,
          description: `at most this many (default ${DEFAULT_OPERATIONS_LIMIT})`,
          schema: { type: 'integer', minimum: 1, maximum: MAX_OPERATIONS_LIMIT, default: DEFAULT_OPERATIONS_LIMIT },
        },
      ],
      ok: { status: 200, description: 'the operations', schema: ref(records.operationList) },
      errors: { 400: 'the query is not valid: an unknown state or parameter, a limit out of range (bad_request)' },
    }),
  },
  '/v1/operations/{id}': {
    get: operation({
      operationId: 'getOperation',
      summary: 'one journaled operation: its input, step, state and report',
      parameters: [
        { name: 'id', in: 'path', required: true, description: "the operation's id", schema: { type: 'string' } },
      ],
      ok: { status: 200, description: 'the operation', schema: ref(records.operation) },
      errors: { 404: 'no such operation (not_found)' },
    }),
  },
  '/v1/retry': {
    post: operation({
      operationId: 'retry',
      summary: 'one pass over every pending deletion, due or not; no body',
      ok: {
        status: 200,
        description: 'what was confirmed and what is still pending',
        schema: ref(reports.retryReport),
      },
    }),
  },
} as const;

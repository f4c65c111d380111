// Hosts, VMs, TPMs and the TPMs' key bindings.
import { StoreError } from './errors.js';
import { deleteWhereIn, expectOne, selectWhereIn, updateWhereIn, whereEquals, type Context } from './support.js';
import type {
  BootMode,
  Host,
  HostState,
  KeyBinding,
  KeyBindingState,
  StoreReads,
  StoreWrites,
  Tpm,
  Vm,
} from './types.js';

interface HostRow {
  uuid: string;
  name: string;
  url: string;
  public_key: string;
  key_id: string;
  certificate: string | null;
  state: HostState;
  last_seen_at: number | null;
  created_at: number;
}
const HOST = 'SELECT uuid, name, url, public_key, key_id, certificate, state, last_seen_at, created_at FROM hosts';
const toHost = (r: HostRow): Host => ({
  uuid: r.uuid,
  name: r.name,
  url: r.url,
  publicKey: r.public_key,
  keyId: r.key_id,
  certificate: r.certificate,
  state: r.state,
  lastSeenAt: r.last_seen_at,
  createdAt: r.created_at,
});

interface VmRow {
  uuid: string;
  name: string;
  host_uuid: string | null;
  boot_mode: BootMode;
  secure_boot: number;
  epoch: number;
  created_at: number;
}
const VM = 'SELECT uuid, name, host_uuid, boot_mode, secure_boot, epoch, created_at FROM vms';
const toVm = (r: VmRow): Vm => ({
  uuid: r.uuid,
  name: r.name,
  hostUuid: r.host_uuid,
  bootMode: r.boot_mode,
  secureBoot: r.secure_boot === 1,
  epoch: r.epoch,
  createdAt: r.created_at,
});

interface TpmRow {
  uuid: string;
  vm_uuid: string;
  created_at: number;
}
const toTpm = (r: TpmRow): Tpm => ({ uuid: r.uuid, vmUuid: r.vm_uuid, createdAt: r.created_at });

interface KeyBindingRow {
  tpm_uuid: string;
  vm_uuid: string;
  key_provider: string;
  state: KeyBindingState;
  created_at: number;
}
const BINDING = 'SELECT tpm_uuid, vm_uuid, key_provider, state, created_at FROM key_bindings';
const toBinding = (r: KeyBindingRow): KeyBinding => ({
  tpmUuid: r.tpm_uuid,
  vmUuid: r.vm_uuid,
  keyProvider: r.key_provider,
  state: r.state,
  createdAt: r.created_at,
});

const orNull = <R, T>(row: R | undefined, map: (row: R) => T): T | null => (row === undefined ? null : map(row));

export function inventoryReads({ sql }: Context) {
  return {
    getHost: async (uuid) => orNull(await sql.get<HostRow>(`${HOST} WHERE uuid = $uuid`, { uuid }), toHost),
    getHostByName: async (name) => orNull(await sql.get<HostRow>(`${HOST} WHERE name = $name`, { name }), toHost),
    listHosts: async () => (await sql.all<HostRow>(`${HOST} ORDER BY name`)).map(toHost),
    getVm: async (uuid) => orNull(await sql.get<VmRow>(`${VM} WHERE uuid = $uuid`, { uuid }), toVm),
    getVmByName: async (name) => orNull(await sql.get<VmRow>(`${VM} WHERE name = $name`, { name }), toVm),
    listVms: async (filter = {}) => {
      const where = whereEquals({ host: { column: 'host_uuid', value: filter.hostUuid } });
      return (await sql.all<VmRow>(`${VM} ${where.clause} ORDER BY name`, where.params)).map(toVm);
    },
    getTpmByVm: async (vmUuid) =>
      orNull(
        await sql.get<TpmRow>('SELECT uuid, vm_uuid, created_at FROM tpms WHERE vm_uuid = $vmUuid', { vmUuid }),
        toTpm,
      ),
    listTpmsByVms: async (vmUuids) =>
      (
        await selectWhereIn<TpmRow>(
          sql,
          'SELECT uuid, vm_uuid, created_at FROM tpms',
          'vm_uuid',
          vmUuids,
          'ORDER BY vm_uuid',
        )
      ).map(toTpm),
    getKeyBinding: async (tpmUuid) =>
      orNull(await sql.get<KeyBindingRow>(`${BINDING} WHERE tpm_uuid = $tpmUuid`, { tpmUuid }), toBinding),
    listKeyBindings: async (filter = {}) => {
      const where = whereEquals({ state: { column: 'state', value: filter.state } });
      return (await sql.all<KeyBindingRow>(`${BINDING} ${where.clause} ORDER BY tpm_uuid`, where.params)).map(
        toBinding,
      );
    },
  } satisfies Partial<StoreReads>;
}

export function inventoryWrites({ sql, now }: Context) {
  const reads = inventoryReads({ sql, now });
  return {
    addHost: async ({ uuid, name, url, publicKey, keyId, certificate, state, lastSeenAt }) => {
      const host: Host = { uuid, name, url, publicKey, keyId, certificate, state, lastSeenAt, createdAt: now() };
      await sql.run(
        `INSERT INTO hosts (uuid, name, url, public_key, key_id, certificate, state, last_seen_at, created_at)
         VALUES ($uuid, $name, $url, $publicKey, $keyId, $certificate, $state, $lastSeenAt, $createdAt)`,
        { ...host },
      );
      return host;
    },
    setHostState: async (uuid, state, seenAt) => {
      const before = await reads.getHost(uuid);
      if (before === null) throw new StoreError('not_found', `host ${uuid} not found`);
      await sql.run(
        'UPDATE hosts SET state = $state, last_seen_at = coalesce($seenAt, last_seen_at) WHERE uuid = $uuid',
        {
          uuid,
          state,
          seenAt: seenAt ?? null,
        },
      );
      return before.state;
    },
    setHostEndpoint: async (uuid, url, certificate) => {
      const { changes } = await sql.run('UPDATE hosts SET url = $url, certificate = $certificate WHERE uuid = $uuid', {
        uuid,
        url,
        certificate,
      });
      expectOne(changes, `host ${uuid}`);
    },
    setHostKey: async (uuid, { publicKey, keyId, certificate }) => {
      const { changes } = await sql.run(
        'UPDATE hosts SET public_key = $publicKey, key_id = $keyId, certificate = $certificate WHERE uuid = $uuid',
        { uuid, publicKey, keyId, certificate },
      );
      expectOne(changes, `host ${uuid}`);
    },
    removeHost: async (uuid) => {
      expectOne((await sql.run('DELETE FROM hosts WHERE uuid = $uuid', { uuid })).changes, `host ${uuid}`);
    },
    addVm: async ({ uuid, name, hostUuid, bootMode, secureBoot }) => {
      const vm: Vm = { uuid, name, hostUuid, bootMode, secureBoot, epoch: 0, createdAt: now() };
      await sql.run(
        `INSERT INTO vms (uuid, name, host_uuid, boot_mode, secure_boot, epoch, created_at)
         VALUES ($uuid, $name, $hostUuid, $bootMode, $secureBoot, $epoch, $createdAt)`,
        { ...vm, secureBoot: secureBoot ? 1 : 0 },
      );
      return vm;
    },
    setVmHost: async (uuid, hostUuid) => {
      const [row] = await sql.all<{ epoch: number }>(
        'UPDATE vms SET host_uuid = $hostUuid, epoch = epoch + 1 WHERE uuid = $uuid RETURNING epoch',
        { uuid, hostUuid },
      );
      expectOne(row === undefined ? 0 : 1, `VM ${uuid}`);
      return row?.epoch ?? 0;
    },
    bumpVmEpoch: async (uuid) => {
      const [row] = await sql.all<{ epoch: number }>(
        'UPDATE vms SET epoch = epoch + 1 WHERE uuid = $uuid RETURNING epoch',
        { uuid },
      );
      expectOne(row === undefined ? 0 : 1, `VM ${uuid}`);
      return row?.epoch ?? 0;
    },
    removeVm: async (uuid) => {
      expectOne((await sql.run('DELETE FROM vms WHERE uuid = $uuid', { uuid })).changes, `VM ${uuid}`);
    },
    addTpm: async ({ uuid, vmUuid, keyProvider }) => {
      const createdAt = now();
      await sql.run('INSERT INTO tpms (uuid, vm_uuid, created_at) VALUES ($uuid, $vmUuid, $createdAt)', {
        uuid,
        vmUuid,
        createdAt,
      });
      const binding: KeyBinding = { tpmUuid: uuid, vmUuid, keyProvider, state: 'attached', createdAt };
      await sql.run(
        `INSERT INTO key_bindings (tpm_uuid, vm_uuid, key_provider, state, created_at)
         VALUES ($tpmUuid, $vmUuid, $keyProvider, $state, $createdAt)`,
        { ...binding },
      );
      return { tpm: { uuid, vmUuid, createdAt }, binding };
    },
    removeTpm: async (uuid) => {
      expectOne((await sql.run('DELETE FROM tpms WHERE uuid = $uuid', { uuid })).changes, `TPM ${uuid}`);
    },
    setKeyBindingState: async (tpmUuid, state) => {
      const { changes } = await sql.run('UPDATE key_bindings SET state = $state WHERE tpm_uuid = $tpmUuid', {
        tpmUuid,
        state,
      });
      expectOne(changes, `key binding of TPM ${tpmUuid}`);
    },
    removeTpms: (uuids) => deleteWhereIn(sql, 'tpms', 'uuid', uuids),
    setKeyBindingsState: (tpmUuids, state) =>
      updateWhereIn(sql, 'key_bindings', 'state = ?', [state], 'tpm_uuid', tpmUuids),
    deleteKeyBindings: (tpmUuids) => deleteWhereIn(sql, 'key_bindings', 'tpm_uuid', tpmUuids),
    deleteKeyBinding: async (tpmUuid) => {
      const { changes } = await sql.run('DELETE FROM key_bindings WHERE tpm_uuid = $tpmUuid', { tpmUuid });
      expectOne(changes, `key binding of TPM ${tpmUuid}`);
    },
  } satisfies Partial<StoreWrites>;
}

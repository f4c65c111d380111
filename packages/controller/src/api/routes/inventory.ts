// Hosts, VMs, TPMs and files: reads straight from the store, writes through the flows.
import type { Hono } from 'hono';
import { addHost, addTpm, addVm, dirState, fileState, moveVm, resolveVm, writeFile } from '../../flows/index.js';
import type { KeyBinding, StoreReads, Tpm, Vm } from '../../store/index.js';
import { readBody } from '../body.js';
import { journaled, type ApiContext } from '../deps.js';
import { moveVmBody, newHostBody, newTpmBody, newVmBody, writeFileBody } from '../schemas.js';

export function inventoryRoutes(app: Hono, { flows, maxBodyBytes }: ApiContext): void {
  app.get('/v1/hosts', async (c) => c.json({ hosts: await flows.store.listHosts() }));

  app.post('/v1/hosts', async (c) => {
    const body = await readBody(c, newHostBody, maxBodyBytes);
    return c.json(await addHost(flows, body), 201);
  });

  app.get('/v1/vms', async (c) => c.json({ vms: await listVmsWithTpm(flows.store) }));

  app.post('/v1/vms', async (c) => {
    const body = await readBody(c, newVmBody, maxBodyBytes);
    return c.json(await addVm(flows, body), 201);
  });

  app.post('/v1/vms/:vm/move', async (c) => {
    const body = await readBody(c, moveVmBody, maxBodyBytes);
    return c.json(await moveVm(flows, c.req.param('vm'), body.host));
  });

  app.post('/v1/vms/:vm/tpm', async (c) => {
    const body = await readBody(c, newTpmBody, maxBodyBytes);
    return c.json(await addTpm(flows, c.req.param('vm'), body.keyProvider), 201);
  });

  app.get('/v1/vms/:vm/files', async (c) => {
    const vm = await resolveVm(flows.store, c.req.param('vm'));
    return c.json({ files: await flows.store.listFilesByVm(vm.uuid) });
  });

  app.post('/v1/files', async (c) => {
    const { content, entries, force, ...rest } = await readBody(c, writeFileBody, maxBodyBytes);
    const state =
      entries === undefined
        ? fileState(Buffer.from(content ?? '', 'base64'))
        : dirState(entries.map((e) => ({ path: e.path, content: Buffer.from(e.content, 'base64') })));
    return c.json(journaled(c, await writeFile(flows, { ...rest, state, force: force === true })), 201);
  });
}

/** A VM as GET /v1/vms lists it: with its TPM, if any, and the TPM's key binding. */
export interface VmWithTpm extends Vm {
  readonly tpm: { readonly uuid: string; readonly createdAt: number; readonly binding: KeyBinding | null } | null;
}

/** Three reads whatever the number of VMs. */
async function listVmsWithTpm(store: StoreReads): Promise<VmWithTpm[]> {
  const vms = await store.listVms();
  const tpms = new Map<string, Tpm>((await store.listTpmsByVms(vms.map((vm) => vm.uuid))).map((t) => [t.vmUuid, t]));
  const bindings = new Map((await store.listKeyBindings()).map((b) => [b.tpmUuid, b]));
  return vms.map((vm) => {
    const tpm = tpms.get(vm.uuid);
    return {
      ...vm,
      tpm:
        tpm === undefined
          ? null
          : { uuid: tpm.uuid, createdAt: tpm.createdAt, binding: bindings.get(tpm.uuid) ?? null },
    };
  });
}

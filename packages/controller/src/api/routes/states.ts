// A VM's states between hosts and backups (adopt, sync, restore, the backups themselves) and a host's disk against
// the database (reconcile): thin over the flows, each answering its report.
import type { Hono } from 'hono';
import { adoptVm, reconcileHost, resolveVm, restoreVm, syncFleet, syncVm } from '../../flows/index.js';
import { readBody } from '../body.js';
import { journaled, type ApiContext } from '../deps.js';
import { ApiError, isCallersAgentCode } from '../errors.js';
import { adoptVmBody, fleetSyncBody, reconcileBody, restoreVmBody } from '../schemas.js';

export function stateRoutes(app: Hono, { flows, maxBodyBytes }: ApiContext): void {
  app.post('/v1/vms/:vm/adopt', async (c) => {
    const body = await readBody(c, adoptVmBody, maxBodyBytes, { optional: true });
    return c.json(journaled(c, await adoptVm(flows, c.req.param('vm'), body)));
  });

  // No body: it reads what is recorded.
  app.post('/v1/vms/:vm/sync', async (c) => c.json(journaled(c, await syncVm(flows, c.req.param('vm')))));

  app.post('/v1/sync', async (c) => {
    const body = await readBody(c, fleetSyncBody, maxBodyBytes, { optional: true });
    return c.json(journaled(c, await syncFleet(flows, body.hosts === undefined ? {} : { hosts: body.hosts })));
  });

  app.post('/v1/vms/:vm/restore', async (c) => {
    const body = await readBody(c, restoreVmBody, maxBodyBytes, { optional: true });
    const report = journaled(c, await restoreVm(flows, c.req.param('vm'), body));
    // The agent refused the command for a path the caller gave: nothing was written, and it is the caller's error.
    for (const file of report.files) {
      if (file.status === 'failed' && isCallersAgentCode(file.code))
        throw new ApiError('bad_request', `host ${report.hostName} refused ${file.path}: ${file.reason}`);
    }
    return c.json(report);
  });

  app.get('/v1/vms/:vm/backups', async (c) => {
    const vm = await resolveVm(flows.store, c.req.param('vm'));
    return c.json({ backups: await flows.store.listBackupsByVm(vm.uuid) });
  });

  app.post('/v1/hosts/:host/reconcile', async (c) => {
    const body = await readBody(c, reconcileBody, maxBodyBytes, { optional: true });
    return c.json(journaled(c, await reconcileHost(flows, c.req.param('host'), body)));
  });
}

// What deletes files on hosts (destroy, TPM removal) and the outbox they leave: each answers its full report.
import type { Hono } from 'hono';
import { destroyVm, removeTpms, retryPendingDeletions } from '../../flows/index.js';
import { readBody, readQuery } from '../body.js';
import { journaled, type ApiContext } from '../deps.js';
import { destroyVmQuery, removeTpmsBody } from '../schemas.js';
import { loadNames, namePending } from '../../store/types.js';

export function deletionRoutes(app: Hono, { flows, maxBodyBytes }: ApiContext): void {
  app.delete('/v1/vms/:vm', async (c) => {
    const query = readQuery(c, destroyVmQuery);
    return c.json(
      journaled(c, await destroyVm(flows, c.req.param('vm'), undefined, { force: query.force === 'true' })),
    );
  });

  app.post('/v1/tpms/remove', async (c) => {
    const body = await readBody(c, removeTpmsBody, maxBodyBytes);
    // The same VM named twice is one removal, as on the command line.
    return c.json(
      journaled(c, await removeTpms(flows, [...new Set(body.vms)], undefined, { force: body.force === true })),
    );
  });

  app.get('/v1/pending', async (c) => {
    const pending = await flows.store.listPendingDeletions();
    const names = await loadNames(flows.store);
    return c.json({ pending: pending.map((row) => namePending(row, names)) });
  });

  // One pass over every pending deletion, due or not; no body.
  app.post('/v1/retry', async (c) => c.json(await retryPendingDeletions(flows, { all: true })));
}

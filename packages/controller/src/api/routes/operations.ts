// The journal of flows: every operation, newest first, and one by id; each with its subject's names (subjectName).
import type { Hono } from 'hono';
import { truncate } from '@hostfiles/shared';
import { readQuery } from '../body.js';
import type { ApiContext } from '../deps.js';
import { ApiError } from '../errors.js';
import { DEFAULT_OPERATIONS_LIMIT, listOperationsQuery } from '../schemas.js';
import { loadNames, loadSubjectNames, nameOperation } from '../../store/types.js';

export function operationRoutes(app: Hono, { flows }: ApiContext): void {
  app.get('/v1/operations', async (c) => {
    const { state, kind, limit } = readQuery(c, listOperationsQuery);
    const operations = await flows.store.listOperations({
      limit: limit === undefined ? DEFAULT_OPERATIONS_LIMIT : Number(limit),
      ...(state === undefined ? {} : { state }),
      ...(kind === undefined ? {} : { kind }),
    });
    const names = await loadNames(flows.store);
    return c.json({ operations: operations.map((o) => nameOperation(o, names)) });
  });

  app.get('/v1/operations/:id', async (c) => {
    const id = c.req.param('id');
    const operation = await flows.store.getOperation(id);
    if (operation === null) throw new ApiError('not_found', `no operation ${truncate(id)}`);
    return c.json(nameOperation(operation, await loadSubjectNames(flows.store, operation)));
  });
}

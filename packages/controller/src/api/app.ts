// createApiApp(deps) → Hono: the controller's HTTP API for the cloud platform. It never listens: serve (or a test) does.
import { randomUUID } from 'node:crypto';
import { silentLogger } from '@hostfiles/shared';
import { Hono } from 'hono';
import { bearerAuth } from './auth.js';
import { declaredSizeLimit } from './body.js';
import { DEFAULT_MAX_BODY_BYTES, type ApiDeps, type ApiEvent } from './deps.js';
import { ApiError, toApiError, type ErrorBody } from './errors.js';
import { countFlows } from './flow-routes.js';
import { OPENAPI_DOCUMENT } from './openapi.js';
import { deletionRoutes } from './routes/deletions.js';
import { inventoryRoutes } from './routes/inventory.js';
import { operationRoutes } from './routes/operations.js';
import { stateRoutes } from './routes/states.js';

export function createApiApp(deps: ApiDeps): Hono {
  const logger = deps.logger ?? silentLogger<ApiEvent>();
  const maxBodyBytes = deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes <= 0) throw new RangeError('maxBodyBytes must be positive');
  const app = new Hono();

  app.use('*', async (c, next) => {
    const started = Date.now();
    await next();
    logger.info('request', {
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      ms: Date.now() - started,
      operationId: c.get('operationId'),
    });
  });
  app.get('/v1/health', (c) => c.json({ status: 'ok' }));
  // Before anything reads a body: an unauthenticated caller learns nothing, not even the size limit.
  app.use('/v1/*', bearerAuth(deps.token), declaredSizeLimit(maxBodyBytes));
  // After authentication: only a caller holding the token runs a flow, and only flows are counted.
  if (deps.onFlow !== undefined) app.use('/v1/*', countFlows(deps.onFlow));
  app.get('/v1/openapi.json', (c) => c.json(OPENAPI_DOCUMENT));
  inventoryRoutes(app, { flows: deps.flows, maxBodyBytes });
  deletionRoutes(app, { flows: deps.flows, maxBodyBytes });
  stateRoutes(app, { flows: deps.flows, maxBodyBytes });
  operationRoutes(app, { flows: deps.flows, maxBodyBytes });

  app.notFound((c) => {
    throw new ApiError('not_found', `no route ${c.req.method} ${c.req.path}`);
  });
  app.onError((raw, c) => {
    const error = toApiError(raw);
    if (error.code === 'internal') {
      // The id ties the caller's answer to the log line; the answer says nothing else about what went wrong.
      const errorId = randomUUID();
      const cause = error.cause instanceof Error ? error.cause : undefined;
      logger.error('internal_error', {
        errorId,
        method: c.req.method,
        path: c.req.path,
        error: cause?.name ?? typeof error.cause,
        message: cause?.message ?? String(error.cause),
      });
      const body: ErrorBody = { error: { code: error.code, message: `internal error (${errorId})` } };
      return c.json(body, error.status);
    }
    if (error.status >= 500) {
      logger.warn('request_failed', {
        method: c.req.method,
        path: c.req.path,
        code: error.code,
        message: error.message,
      });
    }
    // An oversized body is not read to its end: close the connection rather than drain it for keep-alive.
    if (error.code === 'too_large') c.header('connection', 'close');
    const problems = error.problems === undefined ? {} : { problems: error.problems };
    const body: ErrorBody = { error: { code: error.code, message: error.message, ...problems } };
    return c.json(body, error.status);
  });
  return app;
}

// createApp(deps) → Hono. It never listens: main.ts (or a test) serves it.
import { Hono } from 'hono';
import type { AppDeps } from './deps.js';
import { isAgentError } from './errors.js';
import { prepareApply } from './routes/files.js';
import { prepareList, prepareRead, prepareStat } from './routes/reads.js';
import { handleSigned, type Bindings } from './routes/signed.js';

export function createApp(deps: AppDeps): Hono<Bindings> {
  const app = new Hono<Bindings>();

  app.get('/v1/health', (c) => c.json({ status: 'ok' }));
  app.get('/v1/info', (c) =>
    c.json({
      hostUuid: deps.hostUuid,
      version: deps.version,
      publicKey: deps.signer.publicKey,
      keyId: deps.signer.keyId,
      startedAt: deps.startedAt,
    }),
  );
  app.post('/v1/files/apply', (c) => handleSigned(c, 'files.apply', deps, (command) => prepareApply(deps, command)));
  app.post('/v1/files/read', (c) => handleSigned(c, 'files.read', deps, (command) => prepareRead(deps, command)));
  app.post('/v1/files/list', (c) => handleSigned(c, 'files.list', deps, (command) => prepareList(deps, command)));
  app.post('/v1/files/stat', (c) => handleSigned(c, 'files.stat', deps, (command) => prepareStat(deps, command)));

  app.notFound((c) => c.json({ error: { code: 'not_found', message: `no route ${c.req.method} ${c.req.path}` } }, 404));
  app.onError((error, c) => {
    if (isAgentError(error)) {
      deps.logger.warn('refused', { path: c.req.path, code: error.code, status: error.status, message: error.message });
      // An oversized body is not read to its end: close the connection rather than drain it for keep-alive.
      if (error.code === 'too_large') c.header('connection', 'close');
      return c.json({ error: { code: error.code, message: error.message } }, error.status);
    }
    deps.logger.error('internal_error', { path: c.req.path, error: error.name, message: error.message });
    return c.json({ error: { code: 'internal', message: 'internal error' } }, 500);
  });
  return app;
}

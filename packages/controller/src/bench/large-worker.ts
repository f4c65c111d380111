// The processes the large-state benchmark measures, one per step so each peak is its own: the controller's flows
// (write, sync, restore of one state), and the baseline's bare server and client moving the same file raw.
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { mkdir, open, rename } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { signingKeyFromPem } from '@hostfiles/shared';
import { createAgentClient } from '../agents/index.js';
import { createVmQueue, fileState, restoreVm, syncVm, writeFile, type FlowDeps } from '../flows/index.js';
import { createSqliteStore } from '../store/index.js';

const [mode = '', ...args] = process.argv.slice(2);

async function main(): Promise<void> {
  const start = process.hrtime.bigint();
  switch (mode) {
    case 'flow':
      await flow(args);
      break;
    case 'serve':
      serve(args[0] ?? '');
      return;
    case 'upload':
      await upload(args[0] ?? '', args[1] ?? '');
      break;
    case 'download':
      await download(args[0] ?? '', args[1] ?? '');
      break;
    default:
      throw new Error(`unknown mode ${mode}`);
  }
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  process.stdout.write(`${JSON.stringify({ ms, maxRssKiB: process.resourceUsage().maxRSS })}\n`);
}

async function flow([step, db, keyFile, source, target]: readonly string[]): Promise<void> {
  const store = await createSqliteStore(db ?? '');
  const deps: FlowDeps = {
    store,
    agents: createAgentClient({
      key: signingKeyFromPem(readFileSync(keyFile ?? '', 'utf8')),
      timeoutMs: 10_000,
      retries: 0,
      now: Date.now,
    }),
    queue: createVmQueue(),
    now: Date.now,
    random: Math.random,
    concurrency: 8,
    retryBaseMs: 5000,
    retryMaxMs: 600_000,
  };
  try {
    if (step === 'write') {
      const state = fileState(readFileSync(source ?? ''));
      await writeFile(deps, { vm: 'arm', type: 'NvRam', path: target ?? '', state });
    } else if (step === 'sync') {
      const report = await syncVm(deps, 'arm');
      if (report.notUpdated.length > 0) throw new Error('sync failed');
    } else {
      const report = await restoreVm(deps, 'arm');
      if (report.files.some((f) => f.status !== 'written')) throw new Error('restore failed');
    }
  } finally {
    await deps.agents.close();
    await store.close();
  }
}

/** The bare server: POST streams the body to a temp file, fsyncs, renames; GET streams the file back. */
function serve(dir: string): void {
  const target = join(dir, 'VARS.fd');
  const server = createServer((req, res) => {
    void (async () => {
      if (req.method === 'POST') {
        const temp = join(dir, `.tmp-${randomBytes(4).toString('hex')}`);
        await mkdir(dir, { recursive: true });
        await pipeline(req, createWriteStream(temp));
        const file = await open(temp, 'r+');
        await file.sync();
        await file.close();
        await rename(temp, target);
        const parent = await open(dir, 'r');
        await parent.sync();
        await parent.close();
        res.writeHead(200).end('{}');
      } else {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        await pipeline(createReadStream(target), res);
      }
    })();
  });
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`http://127.0.0.1:${(server.address() as AddressInfo).port}\n`);
  });
  process.once('SIGTERM', () => server.close());
}

async function upload(url: string, source: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const req = request(`${url}/upload`, { method: 'POST' }, (res) => {
      res.resume();
      res.once('end', resolve);
    });
    req.once('error', reject);
    createReadStream(source).once('error', reject).pipe(req);
  });
}

async function download(url: string, target: string): Promise<void> {
  const response = await fetch(`${url}/download`);
  if (response.body === null) throw new Error('no body');
  await pipeline(response.body, createWriteStream(target));
  const file = await open(target, 'r+');
  await file.sync();
  await file.close();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

// The benchmark's baseline: a bare node:http server doing the agent's file work with no checks at all —
// no envelope, no signature, no journal, no confinement, no symlink-safe walk, no logs.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { mkdir, open, rename, rmdir, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

interface PlainOp {
  readonly op: 'write' | 'delete';
  readonly path: string;
  readonly content?: string;
}

async function fsyncDir(path: string): Promise<void> {
  const dir = await open(path, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

async function write(path: string, content: Buffer): Promise<string> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const temp = join(dir, `.tmp-${basename(path)}-${randomBytes(6).toString('hex')}`);
  const file = await open(temp, 'wx', 0o600);
  try {
    await file.writeFile(content);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temp, path);
  await fsyncDir(dir);
  return 'written';
}

async function remove(path: string): Promise<string> {
  try {
    await unlink(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw error;
  }
  await fsyncDir(dirname(path));
  await rmdir(dirname(path)).catch(() => undefined); // the agent prunes empty parents too
  return 'deleted';
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const { ops } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { ops: PlainOp[] };
    const run = async (): Promise<string[]> => {
      const results: string[] = [];
      for (const op of ops) {
        results.push(
          op.op === 'write' ? await write(op.path, Buffer.from(op.content ?? '', 'base64')) : await remove(op.path),
        );
      }
      return results;
    };
    run().then(
      (results) => {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ results }));
      },
      (error: unknown) => {
        res.writeHead(500).end(String(error));
      },
    );
  });
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address !== null && typeof address === 'object')
    process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
});
process.once('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
});

// `pnpm demo` until the controller's demo exists: a real agent on loopback over temporary roots,
// its health, one signed write and one signed delete, answers verified against the agent's key.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  ANSWER_CONTEXT,
  buildCommand,
  COMMAND_CONTEXT,
  deleteOp,
  ENDPOINTS,
  generateSigningKey,
  infoSchema,
  parseAnswer,
  parseEnvelope,
  signEnvelope,
  trustedKeyFromBase64,
  verifyEnvelope,
  writeOp,
  type ApplyOp,
} from '@hostfiles/shared';

const HERE = dirname(fileURLToPath(import.meta.url));

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hostfiles-demo-'));
  const roots = { TpmState: join(dir, 'swtpm'), NvRam: join(dir, 'nvram') };
  for (const root of Object.values(roots)) mkdirSync(root);
  const controller = generateSigningKey();
  const hostUuid = randomUUID();
  const configPath = join(dir, 'agent.json');
  const config = {
    hostUuid,
    listen: { host: '127.0.0.1', port: 0 },
    roots,
    trustedKeys: [controller.publicKey],
    keyFile: join(dir, 'agent.key'),
    stateDir: join(dir, 'state'),
  };
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  console.log(`config ${configPath}:\n${JSON.stringify(config, null, 2)}\n`);
  const agent = spawn(process.execPath, [join(HERE, 'main.js'), '--config', configPath], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      createInterface({ input: agent.stdout }).on('line', (line) => {
        console.log(`  agent log: ${line}`);
        const event = JSON.parse(line) as { event?: string; port?: number };
        if (event.event === 'listening' && event.port !== undefined) resolve(event.port);
      });
      agent.once('exit', (code) => {
        reject(new Error(`the agent exited with ${String(code)}`));
      });
    });
    const url = `http://127.0.0.1:${port}`;
    console.log(`\nGET /v1/health → ${await (await fetch(`${url}/v1/health`)).text()}`);
    const info = infoSchema.parse(await (await fetch(`${url}/v1/info`)).json());
    console.log(`GET /v1/info   → agent key ${info.keyId} (pinned by a controller when it adds the host)`);
    const path = join(roots.TpmState, 'vm-1', 'tpm2-00.permall');
    await apply(url, info.publicKey, hostUuid, controller, [writeOp('TpmState', path, Buffer.from('demo TPM state'))]);
    console.log(`  on disk: ${path} = ${JSON.stringify(readFileSync(path, 'utf8'))}`);
    await apply(url, info.publicKey, hostUuid, controller, [deleteOp('TpmState', path)]);
    console.log(
      `  on disk: ${path} exists: ${String(existsSync(path))}; vm-1/ pruned: ${String(!existsSync(dirname(path)))}`,
    );
    console.log('\ndemo done: the agent answered health, one signed write and one signed delete.');
  } finally {
    agent.kill('SIGTERM');
    await new Promise((resolve) => agent.once('exit', resolve));
    rmSync(dir, { recursive: true, force: true });
  }
}

async function apply(
  url: string,
  agentKey: string,
  hostUuid: string,
  key: ReturnType<typeof generateSigningKey>,
  ops: ApplyOp[],
): Promise<void> {
  const command = buildCommand('files.apply', hostUuid, { ops }, { now: Date.now() });
  const response = await fetch(`${url}${ENDPOINTS['files.apply']}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(signEnvelope(COMMAND_CONTEXT, command, key)),
  });
  const envelope = parseEnvelope(await response.text());
  if (!envelope.ok) throw new Error(`${response.status}: ${envelope.error.message}`);
  const trusted = trustedKeyFromBase64(agentKey);
  const payload = verifyEnvelope(envelope.value, ANSWER_CONTEXT, (id) =>
    id === trusted.keyId ? trusted.key : undefined,
  );
  if (!payload.ok) throw new Error(payload.error.message);
  const answer = parseAnswer(payload.value, 'files.apply');
  if (!answer.ok) throw new Error(answer.error.message);
  for (const result of answer.value.results) {
    console.log(
      `\nPOST /v1/files/apply (signed ${command.requestId}) → ${result.op} ${result.path}: ${result.status} (answer signature verified)`,
    );
  }
}

main().catch((error: unknown) => {
  console.error(`demo failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});

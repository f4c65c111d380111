// Real vTPMs for the tests: swtpm state made by swtpm_setup, a running swtpm, and tpm2-tools to look inside.
import { execFile, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, watch } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { randomUUID } from 'node:crypto';
import { addTpm, addVm } from '@hostfiles/controller';
import type { Fleet, FleetOptions } from './controller.js';

const run = promisify(execFile);

/** The user swtpm runs as on Debian and Ubuntu (libvirt's `swtpm_user`). */
export const SWTPM_USER = 'tss';

/** An NV index the tests write and read back to tell one TPM's state from another's. */
export const NV_INDEX = 0x1500016;

/**
 * The roots of agent `i` of a fleet, made traversable for swtpm, which runs as its own user: the way down to the
 * states must be, as /var/lib/libvirt/swtpm is.
 */
export function swtpmRoots(
  fleet: Pick<Fleet, 'agents'>,
  i: number,
): { readonly TpmState: string; readonly NvRam: string } {
  const setup = fleet.agents[i]?.setup;
  if (setup === undefined) throw new Error(`no agent ${i}`);
  for (const dir of [setup.dir, setup.roots.TpmState]) chmodSync(dir, 0o711);
  return setup.roots;
}

const TOOLS = ['swtpm', 'swtpm_setup', 'tpm2_createek', 'tpm2_nvdefine', 'tpm2_nvwrite', 'tpm2_nvread'] as const;

/** Why real vTPM tests can't run here, or undefined when they can (for `t.skip(reason)`). */
export function swtpmUnavailable(user = SWTPM_USER): string | undefined {
  if (process.getuid?.() !== 0) return 'swtpm tests need root (to run swtpm as its own user)';
  for (const tool of TOOLS) {
    const probe = spawnSync(tool, ['--version']);
    if (probe.error !== undefined) return `${tool} is not installed (swtpm, swtpm-tools and tpm2-tools are needed)`;
  }
  if (spawnSync('getent', ['passwd', user]).status !== 0) return `there is no ${user} user to run swtpm as`;
  return undefined;
}

export const swtpmAvailable = (user = SWTPM_USER): boolean => swtpmUnavailable(user) === undefined;

/** uid and gid of `user`, from NSS. */
export function idsOf(user: string): { uid: number; gid: number } {
  const line = spawnSync('getent', ['passwd', user], { encoding: 'utf8' }).stdout;
  const [, , uid, gid] = line.split(':');
  if (uid === undefined || gid === undefined) throw new Error(`no user ${user}`);
  return { uid: Number(uid), gid: Number(gid) };
}

/**
 * Makes a real TPM 2 state in `stateDir` (libvirt's `<uuid>/tpm2`: `<uuid>` root's 0711, `tpm2` 0700 owned by
 * `user`, as libvirt lays them out) by manufacturing it with swtpm_setup as that user: EK (RSA and ECC) with
 * certificates from swtpm's local CA, which needs no network. The directories above `<uuid>` must be
 * traversable by `user`.
 */
export async function createTpmState(stateDir: string, user = SWTPM_USER): Promise<void> {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  chmodSync(dirname(stateDir), 0o711);
  const { uid, gid } = idsOf(user);
  chownSync(stateDir, uid, gid);
  await run('swtpm_setup', [
    '--tpm2',
    '--tpmstate',
    stateDir,
    '--createek',
    '--create-ek-cert',
    '--overwrite',
    '--runas',
    user,
  ]);
}

/**
 * Makes a real TPM 2 state kept in the one file `path` (swtpm's file:// backend) and gives it to `user`, who runs its
 * swtpm: swtpm_setup runs as root, since it replaces the file by name, which takes a directory `user` can write.
 */
export async function createTpmStateFile(path: string, user = SWTPM_USER): Promise<void> {
  await run('swtpm_setup', ['--tpm2', '--tpmstate', `file://${path}`, '--overwrite', '--runas', 'root']);
  const { uid, gid } = idsOf(user);
  chownSync(path, uid, gid);
}

export interface SwtpmHandle {
  /** For tpm2-tools' -T: the swtpm TCTI over the unix socket. */
  readonly tcti: string;
  readonly pid: number;
  /** SIGTERM, resolved once swtpm has exited (and so released its lock). */
  stop(): Promise<void>;
}

/**
 * Runs `swtpm socket` on `stateDir` as `user`, as libvirt does (it holds `stateDir/.lock`), with the TPM already
 * started (startup-clear). Resolves once swtpm wrote its pid file, which it does only once both sockets listen.
 * `backend: 'file'`: the state is the one file `stateDir` names (swtpm's file:// backend, made when missing), which
 * swtpm keeps open and locks nothing of.
 */
export async function startSwtpm(
  stateDir: string,
  user = SWTPM_USER,
  backend: 'dir' | 'file' = 'dir',
): Promise<SwtpmHandle> {
  const dir = mkdtempSync(join(tmpdir(), 'hf-swtpm-'));
  const { uid, gid } = idsOf(user);
  chownSync(dir, uid, gid);
  const socket = join(dir, 'sock');
  const pidFile = join(dir, 'pid');
  const watcher = watch(dir);
  const written = new Promise<void>((resolve) => {
    watcher.on('change', () => {
      if (existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '') resolve();
    });
  });
  const child = spawn(
    'swtpm',
    [
      'socket',
      '--tpm2',
      '--tpmstate',
      backend === 'dir' ? `dir=${stateDir},mode=0600` : `backend-uri=file://${stateDir},mode=0600`,
      '--server',
      `type=unixio,path=${socket}`,
      '--ctrl',
      `type=unixio,path=${socket}.ctrl`,
      '--flags',
      'startup-clear',
      '--runas',
      user,
      '--pid',
      `file=${pidFile}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'exit');
  try {
    await Promise.race([
      written,
      exited.then(([code]) => Promise.reject(new Error(`swtpm exited (${String(code)}): ${stderr}`))),
    ]);
  } finally {
    watcher.close();
  }
  return {
    tcti: `swtpm:path=${socket}`,
    pid: child.pid ?? -1,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The public area of the RSA endorsement key, as hex: derived from the endorsement seed kept in the state, so
 * the same state gives the same bytes on any host, and another state other bytes.
 */
export async function readEkPublic(tcti: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'hf-ek-'));
  try {
    await run('tpm2_createek', ['-T', tcti, '-c', join(dir, 'ek.ctx'), '-G', 'rsa', '-u', join(dir, 'ek.pub')]);
    return readFileSync(join(dir, 'ek.pub')).toString('hex');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Defines an owner NV index of the size of `bytes` and writes them: data that lives in the state file. */
export async function nvWrite(tcti: string, index: number, bytes: Buffer): Promise<void> {
  const handle = `0x${index.toString(16)}`;
  await run('tpm2_nvdefine', ['-T', tcti, handle, '-C', 'o', '-s', String(bytes.length), '-a', 'ownerread|ownerwrite']);
  const writer = execFile('tpm2_nvwrite', ['-T', tcti, handle, '-C', 'o', '-i', '-']);
  const done = once(writer, 'exit');
  writer.stdin?.end(bytes);
  const [code] = (await done) as [number | null];
  if (code !== 0) throw new Error(`tpm2_nvwrite exited ${String(code)}`);
}

export async function nvRead(tcti: string, index: number, size: number): Promise<Buffer> {
  const { stdout } = await run('tpm2_nvread', ['-T', tcti, `0x${index.toString(16)}`, '-C', 'o', '-s', String(size)], {
    encoding: 'buffer',
  });
  return stdout;
}

/** withFleet's options for real vTPMs: the agents make TPM states owned by the swtpm user, as libvirt's are. */
export const SWTPM_FLEET: FleetOptions = {
  agentConfig: { ownership: { TpmState: { owner: SWTPM_USER, group: SWTPM_USER } } },
};

/**
 * VM `vtpm` on host0 of a fleet of two, with a TPM whose state is made where and how libvirt makes it (swtpm_setup
 * as the swtpm user, in `<root>/<uuid>/tpm2`): the VM's uuid, its state directory on host0, and both hosts' roots
 * (made traversable for swtpm).
 */
export async function vtpmOnHost0(fleet: Fleet): Promise<{
  readonly uuid: string;
  readonly state0: string;
  readonly r0: { readonly TpmState: string; readonly NvRam: string };
  readonly r1: { readonly TpmState: string; readonly NvRam: string };
}> {
  const [r0, r1] = [swtpmRoots(fleet, 0), swtpmRoots(fleet, 1)];
  const uuid = randomUUID();
  await addVm(fleet.deps, { name: 'vtpm', host: 'host0', bootMode: 'UEFI', secureBoot: false, uuid });
  await addTpm(fleet.deps, 'vtpm', 'kms');
  const state0 = join(r0.TpmState, uuid);
  await createTpmState(join(state0, 'tpm2'));
  return { uuid, state0, r0, r1 };
}

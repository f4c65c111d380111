// A real QEMU holding a VM's UEFI variable store, as libvirt runs one: the firmware's code read-only in the first
// pflash, the VM's NVRAM writable in the second. Paused before its first instruction (-S) and without KVM (TCG): what
// the tests need is QEMU's hold on the file, not a guest.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const QEMU = 'qemu-system-x86_64';
export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
/** How long QEMU may take to make its machine (TCG, paused: well under a second here). */
const START_WITHIN_MS = 30_000;

/** Why QEMU can't be run here, or undefined when it can. */
export function qemuUnavailable(): string | undefined {
  if (spawnSync(QEMU, ['--version']).error !== undefined) return `${QEMU} is not installed (qemu-system-x86)`;
  if (!existsSync(OVMF_CODE)) return `${OVMF_CODE} is not installed (ovmf)`;
  return undefined;
}

export interface QemuHandle {
  readonly pid: number;
  /** SIGTERM, resolved once QEMU has exited (and so released the store). */
  stop(): Promise<void>;
}

/**
 * Starts QEMU on the variable store `vars`. Resolves once its machine is made, so its drives are open and locked:
 * QEMU waits for a client on its QMP socket before it makes the machine (wait=on), and greets that client from its
 * main loop, which runs only once the machine is made.
 */
export async function startQemu(vars: string): Promise<QemuHandle> {
  const dir = mkdtempSync(join(tmpdir(), 'hf-qemu-'));
  const socket = join(dir, 'qmp.sock');
  const child = spawn(
    QEMU,
    [
      '-machine',
      'q35',
      '-accel',
      'tcg',
      '-nodefaults',
      '-display',
      'none',
      '-S',
      '-drive',
      `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`,
      '-drive',
      `if=pflash,format=raw,unit=1,file=${vars}`,
      '-qmp',
      `unix:${socket},server=on,wait=on`,
      '-monitor',
      'none',
      '-serial',
      'none',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const exited = once(child, 'exit');
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited.catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  let stderr = '';
  const listening = new Promise<void>((resolve) => {
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.includes('waiting for connection')) resolve();
    });
  });
  const failed = exited.then(([code]) => Promise.reject(new Error(`${QEMU} exited (${String(code)}): ${stderr}`)));
  // A QEMU that never gets there fails its test, is stopped and leaves nothing behind.
  const late = new Promise<never>((_, reject) => {
    AbortSignal.timeout(START_WITHIN_MS).addEventListener('abort', () => {
      reject(new Error(`${QEMU} did not make its machine within ${START_WITHIN_MS} ms: ${stderr}`));
    });
  });
  late.catch(() => undefined);
  try {
    await Promise.race([listening, failed, late]);
    const qmp = connect(socket);
    try {
      await Promise.race([once(qmp, 'data'), failed, late]);
    } finally {
      qmp.destroy();
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { pid: child.pid ?? -1, stop };
}

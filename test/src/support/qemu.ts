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
  let stderr = '';
  const listening = new Promise<void>((resolve) => {
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.includes('waiting for connection')) resolve();
    });
  });
  const failed = exited.then(([code]) => Promise.reject(new Error(`${QEMU} exited (${String(code)}): ${stderr}`)));
  const qmp = await Promise.race([listening, failed]).then(() => connect(socket));
  try {
    await Promise.race([once(qmp, 'data'), failed]);
  } finally {
    qmp.destroy();
  }
  return {
    pid: child.pid ?? -1,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited.catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

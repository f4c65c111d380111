// Busy without a lock: a swtpm keeping its TPM state in one file (`--tpmstate backend-uri=file://PATH`, what
// Proxmox, UTM and container setups run) takes no lock on it, so /proc/locks never shows it. Measured with swtpm
// 0.7.1: its state file is held open (an fd, and a mapping) for as long as it runs, and nothing else. So a file TPM
// state is busy while a process named swtpm has it open.
import { readdir, readFile, stat } from 'node:fs/promises';
import { mapLimit } from '@hostfiles/shared';

/** Whether a swtpm process has the file of these stats open now. */
export type HeldOpen = (file: { readonly dev: bigint; readonly ino: bigint }) => Promise<boolean>;

/** How many processes are looked at at once (each look is a few calls through the thread pool). */
const AT_ONCE = 16;

/**
 * Lists the processes in `proc` (/proc) and looks at the open files of those whose name (`comm`) is swtpm; true at
 * the first fd that is the file. A process that ends meanwhile, or an fd closed meanwhile, is skipped. A read of a
 * process's name or fds that fails otherwise (EACCES without CAP_SYS_PTRACE) throws: a look that could not see is no
 * proof of free, and the op is then refused as an I/O failure, never let through.
 */
export function swtpmHoldsOpen(proc = '/proc'): HeldOpen {
  return async (file) => {
    const pids = (await readdir(proc)).filter((name) => /^\d+$/.test(name));
    const found = await mapLimit(pids, AT_ONCE, async (pid) => {
      const comm = await gone(readFile(`${proc}/${pid}/comm`, 'utf8'));
      if (comm?.trimEnd() !== 'swtpm') return false;
      const fds = (await gone(readdir(`${proc}/${pid}/fd`))) ?? [];
      for (const fd of fds) {
        const target = await gone(stat(`${proc}/${pid}/fd/${fd}`, { bigint: true }));
        if (target !== undefined && target.ino === file.ino && target.dev === file.dev) return true;
      }
      return false;
    });
    return found.includes(true);
  };
}

/** The value, or undefined when what was looked at went away meanwhile (a process ended, an fd closed). */
async function gone<T>(look: Promise<T>): Promise<T | undefined> {
  try {
    return await look;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return undefined;
    throw error;
  }
}

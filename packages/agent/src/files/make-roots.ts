// `hostfiles-agent make-roots`: a root libvirt has not made yet (no VM with a vTPM or UEFI on this host so far) is
// made as libvirt makes it, so that the agent starts before the first such VM. The unit runs it before the agent,
// outside its sandbox (the sandbox only lets the agent write roots that exist when it starts).
import { closeSync, fchmodSync, fchownSync, lstatSync, mkdirSync, openSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { FILE_TYPES, type FileType } from '@hostfiles/shared';
import { CHILD_DIR_FLAGS } from './fd-path.js';
import { isFileStoreError } from './file-store-error.js';
import { openRootDir } from './root-dir.js';
import type { FileRoots, Ownerships } from './types.js';

/**
 * libvirt's own modes: /var/lib/libvirt/swtpm is root's, 0711 (each swtpm reaches its `<uuid>/` through it, nobody
 * lists it); /var/lib/libvirt/qemu/nvram is the QEMU user's, 0755, as the QEMU driver makes it at its start.
 */
export const ROOT_MODES: Readonly<Record<FileType, number>> = { TpmState: 0o711, NvRam: 0o755 };

export type RootOutcome =
  | {
      readonly type: FileType;
      readonly path: string;
      readonly made: true;
      readonly mode: string;
      readonly uid?: number;
      readonly gid?: number;
    }
  | { readonly type: FileType; readonly path: string; readonly made: false; readonly reason: string };

/**
 * Each missing root whose parent exists is made: TpmState the caller's (root under the unit), NvRam owned by
 * ownership.NvRam's owner and group. An existing root is never touched, whatever it is (preflight judges it); a
 * missing parent is not made either: its owner and mode are libvirt's to choose, so libvirt must be installed first.
 */
export function makeMissingRoots(
  roots: FileRoots,
  ownership: Ownerships,
  // A seam for the test of the race with libvirtd (which may make a root between the look and the mkdir).
  mkdir: (path: string, mode: number) => void = (path, mode) => {
    mkdirSync(path, { mode });
  },
): RootOutcome[] {
  return FILE_TYPES.flatMap((type): RootOutcome[] => {
    const path = roots[type];
    if (exists(path)) return [];
    const parent = dirname(path);
    if (!exists(parent)) return [{ type, path, made: false, reason: `its parent ${parent} does not exist` }];
    const mode = ROOT_MODES[type];
    // The parent opened as a root is (no link anywhere on its path), and the root made below that descriptor: a link
    // put on the path meanwhile leads nowhere, as for the agent's own ops.
    let held;
    try {
      held = openRootDir(parent);
    } catch (error) {
      if (!isFileStoreError(error)) throw error;
      return [{ type, path, made: false, reason: `its parent cannot be used: ${error.message}` }];
    }
    const { uid, gid } = type === 'NvRam' ? ownership.NvRam : {};
    try {
      const at = `/proc/self/fd/${held.fd}/${basename(path)}`;
      try {
        mkdir(at, mode);
      } catch (error) {
        // Made meanwhile (libvirtd at its start): it exists now, and an existing root is never touched.
        if ((error as NodeJS.ErrnoException).code === 'EEXIST') return [];
        throw error;
      }
      const made = openSync(at, CHILD_DIR_FLAGS);
      try {
        fchmodSync(made, mode); // mkdir's mode went through the umask
        if (uid !== undefined || gid !== undefined) fchownSync(made, uid ?? -1, gid ?? -1);
      } finally {
        closeSync(made);
      }
    } finally {
      closeSync(held.fd);
    }
    return [
      {
        type,
        path,
        made: true,
        mode: `0${mode.toString(8)}`,
        ...(uid === undefined ? {} : { uid }),
        ...(gid === undefined ? {} : { gid }),
      },
    ];
  });
}

/** Something (of any kind) is at `path`; only ENOENT is missing, any other failure is thrown. */
function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

// A state read from the operator's disk for `file write --from`: a file, or a directory (a copy of a vTPM's
// `<uuid>/` with `tpm2/tpm2-00.permall`, …). A directory's lock file and links are never part of a state.
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { confineRelative, LOCK_NAME, MAX_ENTRIES, type FileType } from '@hostfiles/shared';
import { dirState, fileState, MAX_STATE_BYTES, type State } from '../flows/index.js';
import { badInput, isCliError } from './errors.js';

/**
 * Every problem, a file that cannot be read included, is bad input (exit 2): the operator named this state. Two
 * mistakes of kind are refused before anything is read: an NVRAM state is one file (a VARS store), and a vTPM
 * directory keeps swtpm's files in `tpm2/` (libvirt's layout): one that holds them at its top is swtpm's own state
 * directory, which written as is would leave libvirt's swtpm a state it does not find (the VM a fresh TPM).
 */
export function readLocalState(path: string, type: FileType): State {
  try {
    kindProblem(path, type);
    return readState(path);
  } catch (error) {
    if (isCliError(error)) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === undefined) throw error;
    const at = (error as NodeJS.ErrnoException).path ?? path;
    throw badInput(`cannot read ${at}: ${code}`);
  }
}

/** swtpm's own files, as it names them in its state directory (tpm2-00.permall, tpm2-00.volatilestate, …). */
const SWTPM_FILE = /^tpm2?-\d\d\./;

function kindProblem(path: string, type: FileType): void {
  const stats = lstatSync(path);
  if (!stats.isDirectory()) return;
  if (type === 'NvRam') {
    throw badInput(`${path} is a directory: an NVRAM state is one file (an OVMF or AAVMF VARS store)`);
  }
  const names = readdirSync(path);
  const swtpm = names.find((name) => SWTPM_FILE.test(name));
  if (swtpm !== undefined && !names.includes('tpm2') && !names.includes('tpm1.2')) {
    // tpm2-00.permall is a TPM 2's, tpm-00.permall a TPM 1.2's: libvirt keeps each in its own subdirectory.
    const sub = swtpm.startsWith('tpm2-') ? 'tpm2' : 'tpm1.2';
    throw badInput(
      `${path} holds swtpm's ${swtpm} at its top, where libvirt keeps it in ${sub}/: pass a directory that holds ` +
        `${sub}/ (a copy of a VM's <uuid>/ directory), e.g. make D/${sub} and copy these files into it, then --from D`,
    );
  }
}

function readState(path: string): State {
  const stats = lstatSync(path);
  if (!stats.isFile() && !stats.isDirectory()) throw badInput(`${path} is neither a file nor a directory`);
  if (stats.size > MAX_STATE_BYTES) throw badInput(`${path} is over ${MAX_STATE_BYTES} bytes`);
  if (!stats.isDirectory()) return fileState(readFileSync(path));
  const files: { path: string; content: Buffer }[] = [];
  let total = 0;
  const walk = (dir: string, prefix: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const relative = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
      if (entry.name === LOCK_NAME) continue;
      if (entry.isDirectory()) walk(join(dir, entry.name), relative);
      else if (entry.isFile()) {
        const confined = confineRelative(relative);
        if (!confined.ok) throw badInput(`${join(dir, entry.name)}: ${confined.error}`);
        const content = readFileSync(join(dir, entry.name));
        total += content.byteLength;
        if (total > MAX_STATE_BYTES) throw badInput(`${path} holds over ${MAX_STATE_BYTES} bytes`);
        files.push({ path: relative, content });
      } else throw badInput(`${join(dir, entry.name)} is not a regular file or directory: a state holds none`);
    }
  };
  walk(path, '');
  if (files.length === 0) throw badInput(`${path} holds no file: an empty state is not written`);
  if (files.length > MAX_ENTRIES) throw badInput(`${path} holds over ${MAX_ENTRIES} files`);
  return dirState(files);
}

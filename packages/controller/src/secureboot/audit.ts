// One VARS file's Secure Boot audit: is secure boot on, which certificates PK, KEK and db hold, and whether the
// Microsoft 2011 CAs (whose end dates fall in 2026) have their 2023 successors enrolled.
import { err, ok, type Result } from '@hostfiles/shared';
import {
  certificatesOf,
  KEY_VARIABLES,
  MICROSOFT_CAS,
  type EnrolledCertificate,
  type KeyVariable,
} from './certificates.js';
import { GLOBAL_VARIABLE_GUID, IMAGE_SECURITY_DATABASE_GUID, SECURE_BOOT_ENABLE_GUID } from './guid.js';
import { parseSignatureLists } from './signature-list.js';
import { parseVariableStore, type UefiVariable } from './variable-store.js';

export const AUDIT_STATES = ['ok', 'update_available', 'not_applicable', 'unreadable'] as const;
export type AuditState = (typeof AUDIT_STATES)[number];

export interface StoreAudit {
  readonly state: AuditState;
  /** why this state, in words */
  readonly reason: string;
  /** null when the store could not be read */
  readonly secureBoot: boolean | null;
  readonly certificates: readonly EnrolledCertificate[];
  /** the signatures in dbx (certificates and hashes); null when the store could not be read */
  readonly dbxEntries: number | null;
  /** the 2023 CAs that would replace the 2011 ones enrolled, as `NAME (VARIABLE)` */
  readonly missing: readonly string[];
}

const VENDOR: Record<KeyVariable | 'dbx', string> = {
  PK: GLOBAL_VARIABLE_GUID,
  KEK: GLOBAL_VARIABLE_GUID,
  db: IMAGE_SECURITY_DATABASE_GUID,
  dbx: IMAGE_SECURITY_DATABASE_GUID,
};

/**
 * The audit of a VARS file's bytes at `now` (ms since the epoch: the audit's clock, which says whether a 2011 CA has
 * expired); a corrupt one is `unreadable` with the reason, never a throw.
 */
export function auditVariableStore(bytes: Uint8Array, now: number): StoreAudit {
  if (isErasedFlash(bytes)) return auditErasedStore(bytes.byteLength);
  const read = readKeys(bytes);
  if (!read.ok) return unreadable(read.error);
  return classify(read.value, now);
}

/** Flash blocks never written: Debian's AAVMF_VARS.fd is 64 MiB of zeros until the firmware formats it. */
const FLASH_BLOCK_BYTES = 4096;

/** A store of `size` bytes all erased (0x00 or 0xff): blank flash when it is whole blocks. */
export function auditErasedStore(size: number): StoreAudit {
  if (size === 0 || size % FLASH_BLOCK_BYTES !== 0) return unreadable(`${size} erased bytes: no variable store`);
  const reason = 'a blank variable store (the firmware formats it at first boot): no keys, secure boot is off';
  return { state: 'not_applicable', reason, secureBoot: false, certificates: [], dbxEntries: 0, missing: [] };
}

function isErasedFlash(bytes: Uint8Array): boolean {
  if (bytes.byteLength === 0 || bytes.byteLength % FLASH_BLOCK_BYTES !== 0) return false;
  const erased = bytes[0];
  if (erased !== 0x00 && erased !== 0xff) return false;
  const block = Buffer.alloc(FLASH_BLOCK_BYTES, erased);
  for (let at = 0; at < bytes.byteLength; at += FLASH_BLOCK_BYTES) {
    if (Buffer.compare(block, bytes.subarray(at, at + FLASH_BLOCK_BYTES)) !== 0) return false;
  }
  return true;
}

export const unreadable = (reason: string): StoreAudit => ({
  state: 'unreadable',
  reason,
  secureBoot: null,
  certificates: [],
  dbxEntries: null,
  missing: [],
});

interface Keys {
  readonly secureBoot: boolean;
  readonly certificates: readonly EnrolledCertificate[];
  readonly dbxEntries: number;
}

function readKeys(bytes: Uint8Array): Result<Keys, string> {
  const store = parseVariableStore(bytes);
  if (!store.ok) return store;
  const find = (name: string, vendor: string): UefiVariable | undefined =>
    store.value.variables.find((v) => v.name === name && v.vendor === vendor);
  const certificates: EnrolledCertificate[] = [];
  for (const name of KEY_VARIABLES) {
    const lists = parseSignatureLists(find(name, VENDOR[name])?.data ?? new Uint8Array());
    if (!lists.ok) return err(`${name}: ${lists.error}`);
    const found = certificatesOf(name, lists.value);
    if (!found.ok) return found;
    certificates.push(...found.value);
  }
  const dbx = parseSignatureLists(find('dbx', VENDOR.dbx)?.data ?? new Uint8Array());
  if (!dbx.ok) return err(`dbx: ${dbx.error}`);
  // edk2's AuthVariableLib: user mode (a PK is enrolled) and SecureBootEnable, if present, 1. `SecureBoot` itself is
  // volatile, made at each boot from these two, so a stored VARS file never holds it.
  const pk = find('PK', VENDOR.PK);
  const enable = find('SecureBootEnable', SECURE_BOOT_ENABLE_GUID);
  const secureBoot = pk !== undefined && pk.data.byteLength > 0 && (enable === undefined || enable.data[0] === 1);
  return ok({ secureBoot, certificates, dbxEntries: dbx.value.reduce((n, l) => n + l.signatures.length, 0) });
}

function classify(keys: Keys, now: number): StoreAudit {
  const base = { secureBoot: keys.secureBoot, certificates: keys.certificates, dbxEntries: keys.dbxEntries };
  if (!keys.secureBoot) return { ...base, state: 'not_applicable', reason: 'secure boot is off', missing: [] };
  const enrolled = new Set(keys.certificates.flatMap((c) => (c.microsoftCa === null ? [] : [c.microsoftCa])));
  if (enrolled.size === 0) {
    return { ...base, state: 'not_applicable', reason: 'no Microsoft CA is enrolled', missing: [] };
  }
  const lacking = MICROSOFT_CAS.filter((ca) => ca.year === 2011 && enrolled.has(ca.commonName)).flatMap((ca) =>
    ca.successors.filter((name) => !enrolled.has(name)).map((name) => ({ ca, named: `${name} (${ca.variable})` })),
  );
  const missing = lacking.map(({ named }) => named);
  if (missing.length > 0) {
    const why = lacking.map(
      ({ ca, named }) => `${named}, for ${ca.commonName}, ${endOf(ca.commonName, keys.certificates, now)}`,
    );
    return { ...base, state: 'update_available', reason: `the 2023 CAs are missing: ${why.join('; ')}`, missing };
  }
  return { ...base, state: 'ok', reason: 'every Microsoft 2011 CA enrolled has its 2023 successor', missing };
}

/**
 * When the CA enrolled as `commonName` ends, by the audit's clock: `expired on DATE` once its end date is past,
 * `expires on DATE` before (UTC days; of the latest copy, when it is enrolled more than once).
 */
function endOf(commonName: string, certificates: readonly EnrolledCertificate[], now: number): string {
  const end = Math.max(...certificates.filter((c) => c.microsoftCa === commonName).map((c) => Date.parse(c.notAfter)));
  const date = new Date(end).toISOString().slice(0, 10);
  return end < now ? `expired on ${date}` : `expires on ${date}`;
}

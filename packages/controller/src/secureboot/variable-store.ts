// The UEFI variable store of an OVMF/AAVMF VARS file, as edk2 lays it out (MdeModulePkg/Include/Guid/VariableFormat.h,
// MdePkg/Include/Pi/PiFirmwareVolume.h): a firmware volume header, a variable store header, then variables. Every
// length is checked before it is used; the variables' names and data are views into the given bytes, never copies.
import { err, ok, type Result } from '@hostfiles/shared';
import { AUTHENTICATED_STORE_GUID, NVRAM_FV_GUID, PLAIN_STORE_GUID, readGuid } from './guid.js';

/** EFI_FIRMWARE_VOLUME_HEADER up to its block map: ZeroVector, FileSystemGuid, FvLength, Signature, ... Revision. */
const FV_HEADER_BYTES = 56;
/** The block map's entries (NumBlocks, Length) and its terminating (0, 0). */
const FV_BLOCK_BYTES = 8;
const FV_SIGNATURE = 0x4856465f; // '_FVH', little-endian
/** VARIABLE_STORE_HEADER: Signature (GUID), Size, Format, State, Reserved, Reserved1. */
const STORE_HEADER_BYTES = 28;
const STORE_FORMATTED = 0x5a;
const STORE_HEALTHY = 0xfe;
/** AUTHENTICATED_VARIABLE_HEADER: StartId, State, Reserved, Attributes, MonotonicCount, TimeStamp (EFI_TIME, 16),
 * PubKeyIndex, NameSize, DataSize, VendorGuid. */
const AUTH_HEADER_BYTES = 60;
/** VARIABLE_HEADER: StartId, State, Reserved, Attributes, NameSize, DataSize, VendorGuid. */
const PLAIN_HEADER_BYTES = 32;
const VARIABLE_DATA = 0x55aa;
/** A variable completely added. */
export const VAR_ADDED = 0x3f;
/** VAR_ADDED & VAR_IN_DELETED_TRANSITION: being replaced; it still counts while no VAR_ADDED copy exists. */
export const VAR_IN_DELETED_TRANSITION = 0x3e;
/** HEADER_ALIGNMENT: each variable header starts on 4 bytes. */
const align4 = (offset: number): number => Math.ceil(offset / 4) * 4;

export interface UefiVariable {
  readonly name: string;
  readonly vendor: string;
  readonly attributes: number;
  readonly state: number;
  /** a view into the store's bytes */
  readonly data: Uint8Array;
}

export interface VariableStore {
  readonly authenticated: boolean;
  /** the variables the firmware would see, in store order: VAR_ADDED, or in deleted transition with no newer copy */
  readonly variables: readonly UefiVariable[];
}

interface Region {
  readonly view: DataView;
  readonly start: number;
  readonly end: number;
}

/** Parses a VARS file's bytes; a string says what is wrong and where. */
export function parseVariableStore(bytes: Uint8Array): Result<VariableStore, string> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fv = firmwareVolume(view);
  if (!fv.ok) return fv;
  const store = storeHeader(view, fv.value);
  if (!store.ok) return store;
  const all = variables(bytes, store.value.region, store.value.authenticated);
  if (!all.ok) return all;
  return ok({ authenticated: store.value.authenticated, variables: live(all.value) });
}

/** The firmware volume header, checked; answers where the variable store starts and where the volume ends. */
function firmwareVolume(view: DataView): Result<{ headerLength: number; length: number }, string> {
  if (view.byteLength < FV_HEADER_BYTES)
    return err(`too short for a firmware volume header (${view.byteLength} bytes)`);
  const guid = readGuid(view, 16);
  if (guid !== NVRAM_FV_GUID) return err(`not an NVRAM firmware volume (file system GUID ${guid})`);
  if (view.getUint32(40, true) !== FV_SIGNATURE) return err('no _FVH signature in the firmware volume header');
  const length = view.getBigUint64(32, true);
  if (length > BigInt(view.byteLength)) {
    return err(`the firmware volume claims ${length} bytes, the file has ${view.byteLength}`);
  }
  const headerLength = view.getUint16(48, true);
  if (headerLength < FV_HEADER_BYTES + FV_BLOCK_BYTES || headerLength % 2 !== 0 || headerLength > length) {
    return err(`bad firmware volume header length ${headerLength}`);
  }
  // The header's UINT16s sum to zero: a header with a flipped byte is refused here, not misread further on.
  let sum = 0;
  for (let at = 0; at < headerLength; at += 2) sum = (sum + view.getUint16(at, true)) & 0xffff;
  if (sum !== 0) return err('bad firmware volume header checksum');
  return ok({ headerLength, length: Number(length) });
}

function storeHeader(
  view: DataView,
  fv: { headerLength: number; length: number },
): Result<{ authenticated: boolean; region: Region }, string> {
  const start = fv.headerLength;
  if (start + STORE_HEADER_BYTES > fv.length) return err('no room for the variable store header');
  const guid = readGuid(view, start);
  if (guid !== AUTHENTICATED_STORE_GUID && guid !== PLAIN_STORE_GUID) return err(`unknown variable store ${guid}`);
  const size = view.getUint32(start + 16, true);
  if (size < STORE_HEADER_BYTES || start + size > fv.length) {
    return err(`the variable store claims ${size} bytes, the volume has ${fv.length - start} after its header`);
  }
  const format = view.getUint8(start + 20);
  const state = view.getUint8(start + 21);
  if (format !== STORE_FORMATTED || state !== STORE_HEALTHY) {
    return err(`the variable store is not formatted and healthy (format 0x${hex(format)}, state 0x${hex(state)})`);
  }
  return ok({ authenticated: guid === AUTHENTICATED_STORE_GUID, region: { view, start, end: start + size } });
}

/** Every variable header, as edk2 walks them: from the first aligned header until one without the start id. */
function variables(bytes: Uint8Array, region: Region, authenticated: boolean): Result<UefiVariable[], string> {
  const { view, end } = region;
  const headerBytes = authenticated ? AUTH_HEADER_BYTES : PLAIN_HEADER_BYTES;
  // NameSize, DataSize and VendorGuid sit at the end of either header.
  const sizesAt = headerBytes - 24;
  const found: UefiVariable[] = [];
  for (let at = align4(region.start + STORE_HEADER_BYTES); at + 2 <= end;) {
    if (view.getUint16(at, true) !== VARIABLE_DATA) break;
    if (at + headerBytes > end) return err(`the variable header at offset ${at} runs past the store`);
    const nameSize = view.getUint32(at + sizesAt, true);
    const dataSize = view.getUint32(at + sizesAt + 4, true);
    const nameAt = at + headerBytes;
    const dataAt = nameAt + nameSize;
    if (dataAt + dataSize > end) return err(`the variable at offset ${at} runs past the store`);
    const state = view.getUint8(at + 2);
    const name = variableName(bytes, nameAt, nameSize);
    if (name === undefined && (state === VAR_ADDED || state === VAR_IN_DELETED_TRANSITION)) {
      return err(`the variable at offset ${at} has no NUL-terminated UTF-16 name`);
    }
    found.push({
      name: name ?? '',
      vendor: readGuid(view, at + sizesAt + 8),
      attributes: view.getUint32(at + 4, true),
      state,
      data: bytes.subarray(dataAt, dataAt + dataSize),
    });
    at = align4(dataAt + dataSize);
  }
  return ok(found);
}

/** A name of NameSize bytes: UTF-16LE ending in one NUL; undefined when it is not. */
function variableName(bytes: Uint8Array, at: number, size: number): string | undefined {
  if (size < 2 || size % 2 !== 0 || bytes[at + size - 1] !== 0 || bytes[at + size - 2] !== 0) return undefined;
  const name = Buffer.from(bytes.buffer, bytes.byteOffset + at, size - 2).toString('utf16le');
  return name.includes('\0') ? undefined : name;
}

/**
 * edk2's FindVariableEx: per name and vendor, the first VAR_ADDED copy; else the last one in deleted transition (a
 * replacement cut short before its new copy was complete).
 */
function live(all: readonly UefiVariable[]): UefiVariable[] {
  const key = (v: UefiVariable): string => `${v.vendor}/${v.name}`;
  const chosen = new Map<string, UefiVariable>();
  for (const variable of all) {
    const seen = chosen.get(key(variable))?.state;
    const counts = variable.state === VAR_ADDED || variable.state === VAR_IN_DELETED_TRANSITION;
    if (counts && seen !== VAR_ADDED) chosen.set(key(variable), variable);
  }
  return all.filter((variable) => chosen.get(key(variable)) === variable);
}

const hex = (n: number): string => n.toString(16).padStart(2, '0');

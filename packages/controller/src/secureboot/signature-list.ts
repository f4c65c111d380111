// EFI_SIGNATURE_LISTs, the data of PK, KEK, db and dbx (MdePkg/Include/Guid/ImageAuthentication.h): a type GUID, the
// list's size, its header's size and each signature's size, then signatures of an owner GUID and the data.
import { err, ok, type Result } from '@hostfiles/shared';
import { CERT_SHA256_GUID, CERT_X509_GUID, readGuid } from './guid.js';

/** SignatureType (GUID), SignatureListSize, SignatureHeaderSize, SignatureSize. */
const LIST_HEADER_BYTES = 28;
/** EFI_SIGNATURE_DATA starts with its SignatureOwner GUID. */
const OWNER_BYTES = 16;
const SHA256_BYTES = 32;

export interface Signature {
  readonly owner: string;
  /** a view into the variable's data: a DER certificate, a digest, ... as the list's type says */
  readonly data: Uint8Array;
}

export interface SignatureList {
  readonly type: string;
  readonly signatures: readonly Signature[];
}

/** The lists one after another, each within the data; a string says what is wrong. */
export function parseSignatureLists(data: Uint8Array): Result<SignatureList[], string> {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const lists: SignatureList[] = [];
  for (let at = 0; at < data.byteLength;) {
    if (at + LIST_HEADER_BYTES > data.byteLength) return err(`signature list ${lists.length} is cut short`);
    const type = readGuid(view, at);
    const listSize = view.getUint32(at + 16, true);
    const headerSize = view.getUint32(at + 20, true);
    const signatureSize = view.getUint32(at + 24, true);
    const body = listSize - LIST_HEADER_BYTES - headerSize;
    const bad = (why: string): Result<never, string> => err(`signature list ${lists.length}: ${why}`);
    if (listSize < LIST_HEADER_BYTES || at + listSize > data.byteLength) return bad(`bad size ${listSize}`);
    if (body < 0) return bad(`header size ${headerSize} beyond the list`);
    if (signatureSize <= OWNER_BYTES || body % signatureSize !== 0) return bad(`bad signature size ${signatureSize}`);
    if (type === CERT_SHA256_GUID && signatureSize !== OWNER_BYTES + SHA256_BYTES) {
      return bad(`a SHA-256 signature of ${signatureSize} bytes`);
    }
    if ((type === CERT_SHA256_GUID || type === CERT_X509_GUID) && headerSize !== 0) {
      return bad(`a signature header of ${headerSize} bytes where the type has none`);
    }
    const signatures: Signature[] = [];
    for (let s = at + LIST_HEADER_BYTES + headerSize; s < at + listSize; s += signatureSize) {
      signatures.push({ owner: readGuid(view, s), data: data.subarray(s + OWNER_BYTES, s + signatureSize) });
    }
    lists.push({ type, signatures });
    at += listSize;
  }
  return ok(lists);
}

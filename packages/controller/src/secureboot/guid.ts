// EFI_GUIDs as UEFI lays them out (the first three fields little-endian, the last eight bytes as they are), and the
// ones the audit looks for, checked against edk2's headers (see docs/DESIGN.md, "Secure Boot certificate audit").

const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'));
/** The order the 16 bytes are printed in: the three little-endian fields reversed, then '-' where `-1` stands. */
const ORDER = [3, 2, 1, 0, -1, 5, 4, -1, 7, 6, -1, 8, 9, -1, 10, 11, 12, 13, 14, 15];

/** The GUID of 16 bytes at `offset`, lowercase 8-4-4-4-12; the caller has checked the bytes are there. */
export function readGuid(view: DataView, offset: number): string {
  let text = '';
  for (const i of ORDER) text += i < 0 ? '-' : (HEX[view.getUint8(offset + i)] ?? '');
  return text;
}

/** EFI_SYSTEM_NV_DATA_FV_GUID: the firmware volume that holds the non-volatile variables. */
export const NVRAM_FV_GUID = 'fff12b8d-7696-4c8b-a985-2747075b4f50';
/** EFI_AUTHENTICATED_VARIABLE_GUID: a store of AUTHENTICATED_VARIABLE_HEADERs (OVMF and AAVMF with Secure Boot). */
export const AUTHENTICATED_STORE_GUID = 'aaf32c78-947b-439a-a180-2e144ec37792';
/** EFI_VARIABLE_GUID: a store of plain VARIABLE_HEADERs. */
export const PLAIN_STORE_GUID = 'ddcf3616-3275-4164-98b6-fe85707ffe7d';
/** EFI_GLOBAL_VARIABLE: PK, KEK, SecureBoot. */
export const GLOBAL_VARIABLE_GUID = '8be4df61-93ca-11d2-aa0d-00e098032b8c';
/** EFI_IMAGE_SECURITY_DATABASE_GUID: db, dbx. */
export const IMAGE_SECURITY_DATABASE_GUID = 'd719b2cb-3d3a-4596-a3bc-dad00e67656f';
/** EFI_SECURE_BOOT_ENABLE_DISABLE: edk2's SecureBootEnable. */
export const SECURE_BOOT_ENABLE_GUID = 'f0a30bc7-af08-4556-99c4-001009c93a44';
/** EFI_CERT_X509_GUID: each signature is one DER certificate. */
export const CERT_X509_GUID = 'a5c059a1-94e4-4aa7-87b5-ab155c2bf072';
/** EFI_CERT_SHA256_GUID: each signature is a SHA-256 digest (32 bytes). */
export const CERT_SHA256_GUID = 'c1c41626-504c-4092-aca9-41f936934328';

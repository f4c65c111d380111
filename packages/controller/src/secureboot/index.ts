// The Secure Boot certificate audit: its own parser of UEFI variable stores over Node's X509Certificate.
export { AUDIT_STATES, auditVariableStore, type AuditState, type StoreAudit } from './audit.js';
export { MICROSOFT_CAS, type EnrolledCertificate, type KeyVariable, type KnownCa } from './certificates.js';
export { auditStoredNvram, type FleetAudit, type VmAudit } from './fleet.js';
export { auditLiveNvram } from './live.js';
export { parseSignatureLists, type Signature, type SignatureList } from './signature-list.js';
export { storedVolume, type StoredVolume } from './stored-bytes.js';
export { parseVariableStore, type UefiVariable, type VariableStore } from './variable-store.js';

// The certificates of PK, KEK and db as an operator reads them (subject, issuer, expiry), and the Microsoft CAs whose
// 2011 generation expires in 2026 with the 2023 CAs that succeed them.
import { X509Certificate } from 'node:crypto';
import { err, ok, type Result } from '@hostfiles/shared';
import { CERT_X509_GUID } from './guid.js';
import type { SignatureList } from './signature-list.js';

export const KEY_VARIABLES = ['PK', 'KEK', 'db'] as const;
export type KeyVariable = (typeof KEY_VARIABLES)[number];

export interface EnrolledCertificate {
  readonly variable: KeyVariable;
  /** most specific first, as UEFI tools print it: `CN=..., O=..., C=US` */
  readonly subject: string;
  readonly issuer: string;
  /** ISO 8601 */
  readonly notAfter: string;
  /** the SignatureOwner GUID the certificate was enrolled with */
  readonly owner: string;
  /** SHA-256 of the DER, lowercase hex */
  readonly sha256: string;
  /** the Microsoft CA it is (see MICROSOFT_CAS), or null */
  readonly microsoftCa: string | null;
}

export interface KnownCa {
  /** the subject's CN; the subject's O is Microsoft Corporation */
  readonly commonName: string;
  readonly variable: 'KEK' | 'db';
  readonly year: 2011 | 2023;
  /** the 2023 CAs that replace a 2011 one */
  readonly successors: readonly string[];
}

const MICROSOFT = 'Microsoft Corporation';

/** Subjects as Microsoft publishes them (e.g. `C=US, O=Microsoft Corporation, CN=Windows UEFI CA 2023`). */
export const MICROSOFT_CAS: readonly KnownCa[] = [
  {
    commonName: 'Microsoft Corporation KEK CA 2011',
    variable: 'KEK',
    year: 2011,
    successors: ['Microsoft Corporation KEK 2K CA 2023'],
  },
  {
    commonName: 'Microsoft Windows Production PCA 2011',
    variable: 'db',
    year: 2011,
    successors: ['Windows UEFI CA 2023'],
  },
  {
    commonName: 'Microsoft Corporation UEFI CA 2011',
    variable: 'db',
    year: 2011,
    successors: ['Microsoft UEFI CA 2023'],
  },
  { commonName: 'Microsoft Corporation KEK 2K CA 2023', variable: 'KEK', year: 2023, successors: [] },
  { commonName: 'Windows UEFI CA 2023', variable: 'db', year: 2023, successors: [] },
  { commonName: 'Microsoft UEFI CA 2023', variable: 'db', year: 2023, successors: [] },
  { commonName: 'Microsoft Option ROM UEFI CA 2023', variable: 'db', year: 2023, successors: [] },
];

/** The known CA a certificate is, by its subject's CN and O (Node's lines: `O=...`) and the variable it is in. */
function knownCa(variable: KeyVariable, subjectLines: string): KnownCa | undefined {
  const attributes = new Map(
    subjectLines.split('\n').map((line) => {
      const eq = line.indexOf('=');
      return [line.slice(0, eq), line.slice(eq + 1)] as const;
    }),
  );
  if (attributes.get('O') !== MICROSOFT) return undefined;
  const commonName = attributes.get('CN');
  return MICROSOFT_CAS.find((ca) => ca.commonName === commonName && ca.variable === variable);
}

/** The X.509 signatures of a variable's lists, read; other types (hashes in db) are not certificates. */
export function certificatesOf(
  variable: KeyVariable,
  lists: readonly SignatureList[],
): Result<EnrolledCertificate[], string> {
  const found: EnrolledCertificate[] = [];
  for (const [i, list] of lists.entries()) {
    if (list.type !== CERT_X509_GUID) continue;
    for (const signature of list.signatures) {
      let certificate: X509Certificate;
      try {
        certificate = new X509Certificate(signature.data);
      } catch (error) {
        return err(`${variable}: signature list ${i} holds no X.509 certificate (${(error as Error).message})`);
      }
      const notAfter = Date.parse(certificate.validTo);
      if (Number.isNaN(notAfter)) return err(`${variable}: a certificate's expiry ${certificate.validTo} is no date`);
      found.push({
        variable,
        subject: distinguishedName(certificate.subject),
        issuer: distinguishedName(certificate.issuer),
        notAfter: new Date(notAfter).toISOString(),
        owner: signature.owner,
        sha256: certificate.fingerprint256.replaceAll(':', '').toLowerCase(),
        microsoftCa: knownCa(variable, certificate.subject)?.commonName ?? null,
      });
    }
  }
  return ok(found);
}

/** Node prints a name one attribute a line, least specific first; UEFI tools and Windows print it the other way. */
const distinguishedName = (lines: string): string => lines.split('\n').reverse().join(', ');

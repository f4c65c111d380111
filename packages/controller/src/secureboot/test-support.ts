// For tests: UEFI variable stores built byte by byte as edk2 lays them out, and self-signed stand-ins for the
// Microsoft CAs (the same subjects, EC P-256 keys; made with `openssl req -x509 -newkey ec -subj ...`): the real
// 2023 CAs ship in no Debian store, so the `ok` state is proved on these.
import { CERT_SHA256_GUID, CERT_X509_GUID } from './guid.js';

/** DER, base64. */
export const TEST_CERTIFICATES = {
  kek2023:
    'MIICDDCCAbOgAwIBAgIUPQoOLWbhyGwLx6kYtmJamn+aYiwwCgYIKoZIzj0EAwIwXDELMAkGA1UEBhMCVVMxHjAcBgNVBAoMFU1pY3Jvc29mdCBDb3Jwb3JhdGlvbjEtMCsGA1UEAwwkTWljcm9zb2Z0IENvcnBvcmF0aW9uIEtFSyAySyBDQSAyMDIzMB4XDTI2MTIwMTExNTgwMFoXDTM2MTEyODExNTgwMFowXDELMAkGA1UEBhMCVVMxHjAcBgNVBAoMFU1pY3Jvc29mdCBDb3Jwb3JhdGlvbjEtMCsGA1UEAwwkTWljcm9zb2Z0IENvcnBvcmF0aW9uIEtFSyAySyBDQSAyMDIzMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE4/HdE5yFXaEOqNdKGeyK64DLucoQ+HDZqEHvF67lqJ/BhTmhyKeLWjQAtbOi3yKJgY4H2PwKReVyvlw6FmGKAaNTMFEwHQYDVR0OBBYEFHA4TRTp7bMOe3OVPUSp72Qg8KbeMB8GA1UdIwQYMBaAFHA4TRTp7bMOe3OVPUSp72Qg8KbeMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDRwAwRAIgXfbqmrm6bPCzLZ80fin/YnBtpE9wuP3ex7SHOeI06X4CIHuHa1HlS/roNNNM0LP8qzW1Qvp7ha+hyEryRXZZYYBU',
  windows2023:
    'MIIB7DCCAZOgAwIBAgIUETLuMqnB1FtBl8u5zcl9ZEe+n4QwCgYIKoZIzj0EAwIwTDELMAkGA1UEBhMCVVMxHjAcBgNVBAoMFU1pY3Jvc29mdCBDb3Jwb3JhdGlvbjEdMBsGA1UEAwwUV2luZG93cyBVRUZJIENBIDIwMjMwHhcNMjYxMjAxMTE1ODAwWhcNMzYxMTI4MTE1ODAwWjBMMQswCQYDVQQGEwJVUzEeMBwGA1UECgwVTWljcm9zb2Z0IENvcnBvcmF0aW9uMR0wGwYDVQQDDBRXaW5kb3dzIFVFRkkgQ0EgMjAyMzBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABMnNruoyntugBiRZYVy56Bqtl+u94zfRkXD2jPTXLVPM7sCfXnIPqDBCZ9tsbEJChvHzdJc4uZa6kELhoQxLrJ+jUzBRMB0GA1UdDgQWBBTvah505QDOgYb1wSaIGSc0qkgqcDAfBgNVHSMEGDAWgBTvah505QDOgYb1wSaIGSc0qkgqcDAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIEll9fBJpCDkLrDBSAgcwK4X1lbjUL/3SofmznqNAmUNAiBekwFHmgP5XBWEzGgitfpzaazbF+7rA950FU0J0wKv6A==',
  uefi2023:
    'MIIB8TCCAZegAwIBAgIUO6vdSvCPTcTCzKM/PwIvB55sLHYwCgYIKoZIzj0EAwIwTjELMAkGA1UEBhMCVVMxHjAcBgNVBAoMFU1pY3Jvc29mdCBDb3Jwb3JhdGlvbjEfMB0GA1UEAwwWTWljcm9zb2Z0IFVFRkkgQ0EgMjAyMzAeFw0yNjEyMDExMTU4MDBaFw0zNjExMjgxMTU4MDBaME4xCzAJBgNVBAYTAlVTMR4wHAYDVQQKDBVNaWNyb3NvZnQgQ29ycG9yYXRpb24xHzAdBgNVBAMMFk1pY3Jvc29mdCBVRUZJIENBIDIwMjMwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARDGuEQz83aYU+m1K4FX2lHKfpYsxiVhGjyqtpzIv+8sxom/PztBfXnAeQU3ss7JfWBAKq3/Y6cpvsSkDHAod28o1MwUTAdBgNVHQ4EFgQUTCG3cRFQt7K11kueXHXkxlC0fsAwHwYDVR0jBBgwFoAUTCG3cRFQt7K11kueXHXkxlC0fsAwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiBeiDZU9ZkX6+CfhfaSZIO77uGFbWZz7xcw/AjpgmhXiAIhAMErhkN1U1/EtBdn6B+GoAq9Sz/fCfWOe2MHvWhkSzhF',
  kek2011:
    'MIICWDCCAf2gAwIBAgIUZX9B6Gs81l7REg2tqyxjO3fEK/UwCgYIKoZIzj0EAwIwgYAxCzAJBgNVBAYTAlVTMRMwEQYDVQQIDApXYXNoaW5ndG9uMRAwDgYDVQQHDAdSZWRtb25kMR4wHAYDVQQKDBVNaWNyb3NvZnQgQ29ycG9yYXRpb24xKjAoBgNVBAMMIU1pY3Jvc29mdCBDb3Jwb3JhdGlvbiBLRUsgQ0EgMjAxMTAeFw0yNjEyMDExMTU4MDBaFw0zNjExMjgxMTU4MDBaMIGAMQswCQYDVQQGEwJVUzETMBEGA1UECAwKV2FzaGluZ3RvbjEQMA4GA1UEBwwHUmVkbW9uZDEeMBwGA1UECgwVTWljcm9zb2Z0IENvcnBvcmF0aW9uMSowKAYDVQQDDCFNaWNyb3NvZnQgQ29ycG9yYXRpb24gS0VLIENBIDIwMTEwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQwWB1RJUtXNWEkKk5LC5Qcq6x/W89pzBvDYjhMsY4yVy4ttO6E8SyTBfQ0IsWRhV8SRA35fJrnGPE656rgwG+io1MwUTAdBgNVHQ4EFgQUetQEA/Ymb0tFDU5VwdqUGDTv5pMwHwYDVR0jBBgwFoAUetQEA/Ymb0tFDU5VwdqUGDTv5pMwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNJADBGAiEAphJlJHnRCaxyuRRwyd6n+X0+k+Ff5pC5im1LYFaWSmECIQCXvhv9DIZAlzSscy6WVBGU3H+orLzPzAmXzA5r/5t2UA==',
  pca2011:
    'MIICXjCCAgWgAwIBAgIUK//bfyCvVy1eafai6SflFP9HBrEwCgYIKoZIzj0EAwIwgYQxCzAJBgNVBAYTAlVTMRMwEQYDVQQIDApXYXNoaW5ndG9uMRAwDgYDVQQHDAdSZWRtb25kMR4wHAYDVQQKDBVNaWNyb3NvZnQgQ29ycG9yYXRpb24xLjAsBgNVBAMMJU1pY3Jvc29mdCBXaW5kb3dzIFByb2R1Y3Rpb24gUENBIDIwMTEwHhcNMjYxMjAxMTE1ODAwWhcNMzYxMTI4MTE1ODAwWjCBhDELMAkGA1UEBhMCVVMxEzARBgNVBAgMCldhc2hpbmd0b24xEDAOBgNVBAcMB1JlZG1vbmQxHjAcBgNVBAoMFU1pY3Jvc29mdCBDb3Jwb3JhdGlvbjEuMCwGA1UEAwwlTWljcm9zb2Z0IFdpbmRvd3MgUHJvZHVjdGlvbiBQQ0EgMjAxMTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABIvKOnFY7Y3mBjZo51T5PCcawbtdBttxuYg0/74klQ/eXYgacPx1E5U9ulG5/ekopEJC3UDPuvWWW536w4T/VTSjUzBRMB0GA1UdDgQWBBTHExewimk+mqfzQGZfgcqMnrO1UDAfBgNVHSMEGDAWgBTHExewimk+mqfzQGZfgcqMnrO1UDAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIAq7q1xzaN2FhM9PMx5GxdBXK06S8lLZSBYLTaiL7M2VAiASdhNtkelAB/VVyYQb6csBctNFR39L10Svl0MsW70ZCQ==',
  uefi2011:
    'MIICWjCCAf+gAwIBAgIUQS1Ww7iU2gufzzLfhRTBpX7dSKUwCgYIKoZIzj0EAwIwgYExCzAJBgNVBAYTAlVTMRMwEQYDVQQIDApXYXNoaW5ndG9uMRAwDgYDVQQHDAdSZWRtb25kMR4wHAYDVQQKDBVNaWNyb3NvZnQgQ29ycG9yYXRpb24xKzApBgNVBAMMIk1pY3Jvc29mdCBDb3Jwb3JhdGlvbiBVRUZJIENBIDIwMTEwHhcNMjYxMjAxMTE1ODAwWhcNMzYxMTI4MTE1ODAwWjCBgTELMAkGA1UEBhMCVVMxEzARBgNVBAgMCldhc2hpbmd0b24xEDAOBgNVBAcMB1JlZG1vbmQxHjAcBgNVBAoMFU1pY3Jvc29mdCBDb3Jwb3JhdGlvbjErMCkGA1UEAwwiTWljcm9zb2Z0IENvcnBvcmF0aW9uIFVFRkkgQ0EgMjAxMTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABNHmP23YY8DmlseFVKbJqctidd2sM4lf/5XXNZb/j2S/5Mye210F6gimeO+Y8VUW2Ml5Do9xR7i04mJJ+9tCp6ajUzBRMB0GA1UdDgQWBBSPMms2nMvZ1Dk2xiPTXylwQRQpgjAfBgNVHSMEGDAWgBSPMms2nMvZ1Dk2xiPTXylwQRQpgjAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0kAMEYCIQCYIZbkgY93cbhe1sAqsuTZEx61e806QEWigxGDcj3ZOwIhAPMGVfbgWOKLXNPfD4mAmlxbQ76CoFKfGa4IEooDSuib',
  spoof:
    'MIIB3TCCAYOgAwIBAgIUM2n9HchJrR0GPnV3k3PbTUayMaYwCgYIKoZIzj0EAwIwRDELMAkGA1UEBhMCVVMxFjAUBgNVBAoMDU5vdCBNaWNyb3NvZnQxHTAbBgNVBAMMFFdpbmRvd3MgVUVGSSBDQSAyMDIzMB4XDTI2MTIwMTExNTgwMFoXDTM2MTEyODExNTgwMFowRDELMAkGA1UEBhMCVVMxFjAUBgNVBAoMDU5vdCBNaWNyb3NvZnQxHTAbBgNVBAMMFFdpbmRvd3MgVUVGSSBDQSAyMDIzMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEoDvbMvO8uVlkSkoC6S6P1VaTjONs4TK4k6EPWZrr2g+DQHnclcMOWFx4JfO7yBBFib1OpErMGB0vHp3OQB1DtKNTMFEwHQYDVR0OBBYEFNYqY9DIYfcpOXTxOvGpdYlQbunbMB8GA1UdIwQYMBaAFNYqY9DIYfcpOXTxOvGpdYlQbunbMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIgO20XojWPFvBxf6cy9/FprcSeJDL3JGPYuPpYQnJb4aUCIQCirds/IxfB7N30Yrq6zVXYxa1JEtArQVBdG7OM2tRGVw==',
  pk: 'MIIBwTCCAWegAwIBAgIUIoa/s35JYlK5vUfCD0YsdteUpP0wCgYIKoZIzj0EAwIwNjEYMBYGA1UECgwPaG9zdGZpbGVzIHRlc3RzMRowGAYDVQQDDBFUZXN0IFBsYXRmb3JtIEtleTAeFw0yNjEyMDExMTU4MDBaFw0zNjExMjgxMTU4MDBaMDYxGDAWBgNVBAoMD2hvc3RmaWxlcyB0ZXN0czEaMBgGA1UEAwwRVGVzdCBQbGF0Zm9ybSBLZXkwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASbZ2/AIRiGnZsgWwY55hZRR5uIlODQ/miV3ERVY2Xc8q6XgrqyFDOZ+VSH6nF++fUJTB7WiXWb9qZAx1c6YS1co1MwUTAdBgNVHQ4EFgQUh4YfqXJMHbc/9aFnqEg9R4bvTGMwHwYDVR0jBBgwFoAUh4YfqXJMHbc/9aFnqEg9R4bvTGMwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiBIbJF5kPmlSUJuVcm6D7G4GY2I7mMdIRG57e8VgIuxXQIhAMWeVSxPSxYJEYoY+AdvqnfZRCeOIhiOy64AUAdj+I1W',
} as const;
export type TestCertificate = keyof typeof TEST_CERTIFICATES;
export const certificateDer = (name: TestCertificate): Buffer => Buffer.from(TEST_CERTIFICATES[name], 'base64');

/** Microsoft's SignatureOwner GUID, as its certificates are enrolled with. */
export const MICROSOFT_OWNER = '77fa9abd-0359-4d32-bd60-28f4e78f784b';

/** A GUID's 16 bytes: the first three fields little-endian, the rest as written. */
export function guidBytes(guid: string): Buffer {
  const [a = '', b = '', c = '', d = '', e = ''] = guid.split('-');
  const out = Buffer.alloc(16);
  out.writeUInt32LE(parseInt(a, 16), 0);
  out.writeUInt16LE(parseInt(b, 16), 4);
  out.writeUInt16LE(parseInt(c, 16), 6);
  Buffer.from(d + e, 'hex').copy(out, 8);
  return out;
}

/** One EFI_SIGNATURE_LIST of X.509 certificates (each of its own size, so one per list, as edk2 enrolls them). */
export function x509List(der: Buffer, owner = MICROSOFT_OWNER): Buffer {
  return signatureList(CERT_X509_GUID, [Buffer.concat([guidBytes(owner), der])]);
}

/** One EFI_SIGNATURE_LIST of SHA-256 digests. */
export function sha256List(digests: readonly Buffer[], owner = MICROSOFT_OWNER): Buffer {
  return signatureList(
    CERT_SHA256_GUID,
    digests.map((d) => Buffer.concat([guidBytes(owner), d])),
  );
}

function signatureList(type: string, signatures: readonly Buffer[]): Buffer {
  const size = signatures[0]?.length ?? 16;
  const header = Buffer.alloc(28);
  guidBytes(type).copy(header, 0);
  header.writeUInt32LE(28 + size * signatures.length, 16);
  header.writeUInt32LE(0, 20);
  header.writeUInt32LE(size, 24);
  return Buffer.concat([header, ...signatures]);
}

export interface TestVariable {
  readonly name: string;
  readonly vendor: string;
  readonly data: Buffer;
  /** VAR_ADDED (0x3f) unless given */
  readonly state?: number;
}

export interface StoreOptions {
  /** authenticated headers (the default), or plain ones */
  readonly authenticated?: boolean;
  /** the whole volume; 0x84000 (OVMF's 4 MiB build) unless given */
  readonly volumeBytes?: number;
}

/** A VARS file: a firmware volume with a good checksum, a formatted, healthy store, then the variables. */
export function buildVariableStore(variables: readonly TestVariable[], options: StoreOptions = {}): Buffer {
  const authenticated = options.authenticated ?? true;
  const volumeBytes = options.volumeBytes ?? 0x84000;
  const out = Buffer.alloc(volumeBytes, 0xff);
  const headerLength = 72;
  out.fill(0, 0, headerLength);
  guidBytes('fff12b8d-7696-4c8b-a985-2747075b4f50').copy(out, 16);
  out.writeBigUInt64LE(BigInt(volumeBytes), 32);
  out.write('_FVH', 40, 'latin1');
  out.writeUInt32LE(0x0004feff, 44);
  out.writeUInt16LE(headerLength, 48);
  out.writeUInt8(2, 55);
  out.writeUInt32LE(volumeBytes / 0x1000, 56);
  out.writeUInt32LE(0x1000, 60);
  fixChecksum(out);
  const store = headerLength;
  const storeSize = Math.min(0x3ffb8, volumeBytes - store);
  out.fill(0, store, store + 28);
  const storeGuid = authenticated ? 'aaf32c78-947b-439a-a180-2e144ec37792' : 'ddcf3616-3275-4164-98b6-fe85707ffe7d';
  guidBytes(storeGuid).copy(out, store);
  out.writeUInt32LE(storeSize, store + 16);
  out.writeUInt8(0x5a, store + 20);
  out.writeUInt8(0xfe, store + 21);
  let at = Math.ceil((store + 28) / 4) * 4;
  for (const variable of variables) {
    const name = Buffer.from(`${variable.name}\0`, 'utf16le');
    const header = variableHeader(variable, name.length, authenticated);
    const whole = Buffer.concat([header, name, variable.data]);
    if (at + whole.length > store + storeSize) throw new RangeError('the variables do not fit the store');
    whole.copy(out, at);
    at = Math.ceil((at + whole.length) / 4) * 4;
  }
  return out;
}

function variableHeader(variable: TestVariable, nameSize: number, authenticated: boolean): Buffer {
  const header = Buffer.alloc(authenticated ? 60 : 32);
  header.writeUInt16LE(0x55aa, 0);
  header.writeUInt8(variable.state ?? 0x3f, 2);
  header.writeUInt32LE(0x27, 4); // NV + BS + RT + time-based authenticated write
  const sizesAt = header.length - 24;
  header.writeUInt32LE(nameSize, sizesAt);
  header.writeUInt32LE(variable.data.length, sizesAt + 4);
  guidBytes(variable.vendor).copy(header, sizesAt + 8);
  return header;
}

/** Sets the firmware volume header's checksum so its UINT16s sum to zero. */
export function fixChecksum(volume: Buffer): void {
  const headerLength = volume.readUInt16LE(48);
  volume.writeUInt16LE(0, 50);
  let sum = 0;
  for (let at = 0; at < headerLength; at += 2) sum = (sum + volume.readUInt16LE(at)) & 0xffff;
  volume.writeUInt16LE((0x10000 - sum) & 0xffff, 50);
}

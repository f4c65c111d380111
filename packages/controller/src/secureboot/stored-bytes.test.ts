import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import type { BackupEntry } from '../store/index.js';
import { storedVolume } from './stored-bytes.js';
import { buildVariableStore, certificateDer, x509List } from './test-support.js';
import { GLOBAL_VARIABLE_GUID } from './guid.js';

const MIB = 1024 * 1024;

function entry(bytes: Buffer, encoding: 'gzip' | 'identity' = 'gzip'): BackupEntry {
  return {
    path: '',
    content: encoding === 'gzip' ? gzipSync(bytes) : bytes,
    encoding,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    size: bytes.length,
  };
}

/** A 64 MiB AAVMF-like file: a volume of 768 KiB, then zeros. */
function aavmfLike(): Buffer {
  const file = Buffer.alloc(64 * MIB);
  const pk = { name: 'PK', vendor: GLOBAL_VARIABLE_GUID, data: x509List(certificateDer('pk')) };
  buildVariableStore([pk], { volumeBytes: 0xc0000 }).copy(file);
  return file;
}

test('a gzip-stored 64 MiB file is inflated only to the end of its firmware volume', async () => {
  const file = aavmfLike();
  const volume = await storedVolume(entry(file));
  assert.ok(volume.ok && volume.value.kind === 'bytes');
  assert.equal(volume.value.bytes.byteLength, 0xc0000);
  assert.ok(file.subarray(0, 0xc0000).equals(volume.value.bytes));
});

test('a plain-stored file is handed over as stored, not copied', async () => {
  const stored = entry(aavmfLike(), 'identity');
  const volume = await storedVolume(stored);
  assert.ok(volume.ok && volume.value.kind === 'bytes');
  assert.equal(volume.value.bytes, stored.content);
});

test('blank flash is recognised while inflating, whole, without holding it', async () => {
  for (const fill of [0x00, 0xff]) {
    const volume = await storedVolume(entry(Buffer.alloc(64 * MIB, fill)));
    assert.deepEqual(volume, { ok: true, value: { kind: 'erased', size: 64 * MIB } }, `fill ${fill}`);
  }
  const notBlank = Buffer.alloc(4 * MIB);
  notBlank[3 * MIB] = 1;
  assert.deepEqual(await storedVolume(entry(notBlank)), {
    ok: false,
    error: 'the stored NVRAM is blank at its start but not after: no volume',
  });
});

test('a volume claiming more than is stored, corrupt or short gzip: the bytes for the parser to judge, or an error', async () => {
  const file = aavmfLike().subarray(0, 0xc0000);
  const claims = Buffer.from(file);
  claims.writeBigUInt64LE(BigInt(claims.length + 1), 32);
  const whole = await storedVolume(entry(claims));
  assert.ok(whole.ok && whole.value.kind === 'bytes');
  assert.equal(whole.value.bytes.byteLength, claims.length, 'all of it: the parser says the volume is longer');
  const gz = entry(file);
  const corrupt = { ...gz, content: Buffer.concat([gz.content.subarray(0, 20), Buffer.alloc(200, 0x55)]) };
  const bad = await storedVolume(corrupt);
  assert.ok(!bad.ok);
  assert.match(bad.error, /^the stored NVRAM does not inflate: /);
  const short = await storedVolume({ ...gz, size: file.length * 2 });
  assert.ok(short.ok, 'the volume is there: the rest of the recorded size is not read');
  const cut = await storedVolume({ ...gz, content: gzipSync(file.subarray(0, 100)) });
  assert.deepEqual(cut, { ok: false, error: `the stored NVRAM inflates to 100 bytes, not ${file.length}` });
});

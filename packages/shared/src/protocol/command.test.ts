// The op builders the controller and the tests use.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { deleteOp, writeDirOp, writeOp } from './command.js';
import { applyOpSchema } from './schemas.js';
import { sha256Of } from './state.js';

describe('op builders', () => {
  const big = Buffer.alloc(32 * 1024, 3);

  it('writeOp: raw unless asked to compress, the sha256 of the bytes, expect when given', () => {
    const plain = writeOp('NvRam', '/n/vm_VARS.fd', big);
    assert.deepEqual(Buffer.from(plain.content, 'base64'), big);
    assert.equal(plain.encoding, undefined);
    assert.equal('expect' in plain, false);
    const packed = writeOp('NvRam', '/n/vm_VARS.fd', big, { compress: true, expect: 'absent' });
    assert.equal(packed.encoding, 'gzip');
    assert.deepEqual(gunzipSync(Buffer.from(packed.content, 'base64')), big);
    assert.equal(packed.sha256, sha256Of(big));
    assert.equal(packed.expect, 'absent');
    for (const op of [plain, packed]) assert.ok(applyOpSchema.safeParse(op).success);
  });

  it('writeDirOp: one entry per file, gzipped when that pays; deleteOp with an expectation', () => {
    const op = writeDirOp(
      'TpmState',
      '/t/uuid',
      [
        { path: 'tpm2/tpm2-00.permall', content: big },
        { path: 'tpm2/small', content: Buffer.from('x') },
      ],
      { expect: sha256Of(big) },
    );
    assert.deepEqual(
      op.entries.map((e) => [e.path, e.encoding, e.sha256]),
      [
        ['tpm2/tpm2-00.permall', 'gzip', sha256Of(big)],
        ['tpm2/small', undefined, sha256Of(Buffer.from('x'))],
      ],
    );
    assert.equal(op.expect, sha256Of(big));
    assert.ok(applyOpSchema.safeParse(op).success);
    assert.deepEqual(deleteOp('TpmState', '/t/uuid', 'absent'), {
      op: 'delete',
      type: 'TpmState',
      path: '/t/uuid',
      expect: 'absent',
    });
    assert.equal('expect' in deleteOp('TpmState', '/t/uuid'), false);
  });
});

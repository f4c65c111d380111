// The state digest against the sha256sum pipeline it documents, and content encoding both ways.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { decodeContent, encodeContent, GZIP_THRESHOLD_BYTES, sha256Of, stateDigest, verifyContent } from './state.js';

const PIPELINE = "find . -type f ! -name .lock -printf '%P\\0' | LC_ALL=C sort -z | xargs -0r sha256sum | sha256sum";

describe('stateDigest', () => {
  it('equals the documented sha256sum pipeline over a directory, whatever order the files come in', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'hostfiles-digest-'));
    t.after(() => {
      rmSync(dir, { recursive: true, force: true });
    });
    // Byte order, not locale order: 'B' < 'a' < 'tpm2' < 'é' in UTF-8 bytes.
    const files: Record<string, Buffer> = {
      'tpm2/tpm2-00.permall': randomBytes(5000),
      'tpm2/tpm2-00.volatilestate': randomBytes(300),
      B: Buffer.from('upper'),
      a: Buffer.alloc(0),
      'é/x': Buffer.from('utf-8 name'),
    };
    for (const [path, bytes] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), bytes);
    }
    writeFileSync(join(dir, 'tpm2', '.lock'), '');
    const expected = execFileSync('bash', ['-c', PIPELINE], { cwd: dir, encoding: 'utf8' }).split(' ')[0];
    const entries = Object.entries(files).map(([path, bytes]) => ({ path, sha256: sha256Of(bytes) }));
    assert.equal(stateDigest(entries), expected);
    assert.equal(stateDigest([...entries].reverse()), expected);
  });

  it('equals the pipeline for names sha256sum escapes: a backslash, a line feed, a carriage return', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'hostfiles-digest-'));
    t.after(() => {
      rmSync(dir, { recursive: true, force: true });
    });
    const files: Record<string, Buffer> = {
      'back\\slash': Buffer.from('1'),
      'line\nfeed': Buffer.from('2'),
      'carriage\rreturn': Buffer.from('3'),
      'd\\ir/x\ny\\z': Buffer.from('4'),
      plain: Buffer.from('5'),
    };
    for (const [path, bytes] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), bytes);
    }
    const expected = execFileSync('bash', ['-c', PIPELINE], { cwd: dir, encoding: 'utf8' }).split(' ')[0];
    const entries = Object.entries(files).map(([path, bytes]) => ({ path, sha256: sha256Of(bytes) }));
    assert.equal(stateDigest(entries), expected);
    assert.equal(stateDigest([...entries].reverse()), expected);
  });

  it('no file name can forge the line of another file', () => {
    const [a, b] = ['a'.repeat(64), 'b'.repeat(64)];
    const two = [
      { path: 'x', sha256: a },
      { path: 'y', sha256: b },
    ];
    assert.notEqual(stateDigest([{ path: `x\n${b}  y`, sha256: a }]), stateDigest(two));
    assert.notEqual(stateDigest([{ path: 'x\\ny', sha256: a }]), stateDigest([{ path: 'x\ny', sha256: a }]));
  });

  it('of no files is the sha256 of nothing', () => {
    assert.equal(stateDigest([]), sha256Of(new Uint8Array(0)));
  });
});

describe('encodeContent and decodeContent', () => {
  it('gzips only from the threshold on and only when smaller; both round-trip', () => {
    const small = Buffer.alloc(GZIP_THRESHOLD_BYTES - 1, 1);
    const compressible = Buffer.alloc(64 * 1024, 0);
    const incompressible = randomBytes(8192);
    assert.equal(encodeContent(small).encoding, undefined);
    assert.equal(encodeContent(compressible).encoding, 'gzip');
    assert.equal(encodeContent(incompressible).encoding, undefined);
    for (const bytes of [small, compressible, incompressible, Buffer.alloc(0)]) {
      const encoded = encodeContent(bytes);
      assert.equal(encoded.size, bytes.length);
      assert.equal(encoded.sha256, sha256Of(bytes));
      const decoded = decodeContent(encoded.content, encoded.encoding, encoded.sha256, bytes.length);
      assert.ok(decoded.ok && decoded.value.equals(bytes));
    }
  });

  it('refuses a gzip bomb without inflating it, content over the limit, bad gzip and a wrong sha256', () => {
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024));
    assert.ok(bomb.length < 128 * 1024, 'the bomb is small on the wire');
    const bombSha = sha256Of(Buffer.alloc(64 * 1024 * 1024));
    assert.deepEqual(decodeContent(bomb.toString('base64'), 'gzip', bombSha, 1024 * 1024), {
      ok: false,
      error: 'too_large',
    });
    const raw = Buffer.from('12345');
    assert.deepEqual(decodeContent(raw.toString('base64'), undefined, sha256Of(raw), 4), {
      ok: false,
      error: 'too_large',
    });
    assert.equal(decodeContent(raw.toString('base64'), undefined, sha256Of(raw), 5).ok, true);
    assert.deepEqual(decodeContent(raw.toString('base64'), 'gzip', sha256Of(raw), 100), {
      ok: false,
      error: 'bad_content',
    });
    assert.deepEqual(decodeContent(raw.toString('base64'), undefined, '0'.repeat(64), 100), {
      ok: false,
      error: 'sha256_mismatch',
    });
  });
});

describe('decodeContent with a size, and verifyContent', () => {
  const bytes = Buffer.alloc(256 * 1024, 0x5a);
  const gz = gzipSync(bytes);
  const sha = sha256Of(bytes);

  it('decodes into exactly the announced size, and refuses a stream longer or shorter than it', () => {
    const decoded = decodeContent(gz.toString('base64'), 'gzip', sha, 1024 * 1024, bytes.length);
    assert.ok(decoded.ok && decoded.value.equals(bytes));
    for (const size of [bytes.length - 1, bytes.length + 1]) {
      assert.deepEqual(decodeContent(gz.toString('base64'), 'gzip', sha, 1024 * 1024, size), {
        ok: false,
        error: 'bad_content',
      });
    }
    assert.deepEqual(decodeContent(gz.toString('base64'), 'gzip', sha, 1024, bytes.length), {
      ok: false,
      error: 'too_large',
    });
  });

  it('verifies as a stream: size and sha256 must both hold, a bomb stops at the limit', async () => {
    assert.deepEqual(await verifyContent(gz, 'gzip', sha, bytes.length, 1024 * 1024), {
      ok: true,
      value: bytes.length,
    });
    assert.deepEqual(await verifyContent(bytes, undefined, sha, bytes.length, 1024 * 1024), {
      ok: true,
      value: bytes.length,
    });
    assert.deepEqual(await verifyContent(gz, 'gzip', sha, bytes.length - 1, 1024 * 1024), {
      ok: false,
      error: 'bad_content',
    });
    assert.deepEqual(await verifyContent(gz, 'gzip', sha, bytes.length + 1, 1024 * 1024), {
      ok: false,
      error: 'bad_content',
    });
    assert.deepEqual(await verifyContent(gz, 'gzip', sha256Of(Buffer.from('x')), bytes.length, 1024 * 1024), {
      ok: false,
      error: 'sha256_mismatch',
    });
    assert.deepEqual(await verifyContent(gz, 'gzip', sha, bytes.length, 1024), { ok: false, error: 'too_large' });
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024));
    assert.deepEqual(await verifyContent(bomb, 'gzip', sha, 1024, 4096), { ok: false, error: 'bad_content' });
    assert.deepEqual(await verifyContent(Buffer.from('not gzip'), 'gzip', sha, 8, 4096), {
      ok: false,
      error: 'bad_content',
    });
  });
});

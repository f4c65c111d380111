// Schema details not reached through parseCommand or parseEnvelope: /v1/info, endpoints, error bodies.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import nacl from 'tweetnacl';
import { keyIdOf } from '../envelope/keys.js';
import {
  answerByteCap,
  applyAnswerSchema,
  ENDPOINTS,
  errorBodySchema,
  infoSchema,
  MAX_ANSWER_BYTES,
  MAX_MESSAGE_LENGTH,
  MAX_OPS,
  MAX_PATH_LENGTH,
} from './schemas.js';

const raw = Buffer.from(nacl.sign.keyPair().publicKey);
const info = {
  hostUuid: '6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6b',
  version: '0.1.0',
  publicKey: raw.toString('base64'),
  keyId: keyIdOf(raw),
  startedAt: 1764000000000,
};

describe('infoSchema', () => {
  it('accepts the /v1/info answer', () => {
    assert.deepStrictEqual(infoSchema.parse(info), info);
  });

  it('refuses a public key that is not exactly 32 bytes of standard base64', () => {
    const bad = [
      Buffer.alloc(31).toString('base64'),
      // 33 bytes are 44 characters too.
      Buffer.concat([raw, Buffer.alloc(1)]).toString('base64'),
      raw.toString('base64url'),
      info.publicKey.replace(/=$/, ''),
      // The same 32 bytes with a non-zero unused bit.
      `${info.publicKey.slice(0, 42)}${String.fromCharCode(info.publicKey.charCodeAt(42) + 1)}=`,
    ];
    for (const publicKey of bad) {
      assert.notEqual(publicKey, info.publicKey);
      assert.equal(infoSchema.safeParse({ ...info, publicKey }).success, false, publicKey);
    }
  });

  it('refuses unknown fields, an uppercase keyId and a fractional startedAt', () => {
    assert.equal(infoSchema.safeParse({ ...info, extra: 1 }).success, false);
    assert.equal(
      infoSchema.safeParse({ ...info, keyId: info.keyId.toUpperCase().replace(/^[0-9]/, 'A') }).success,
      false,
    );
    assert.equal(infoSchema.safeParse({ ...info, startedAt: 1.5 }).success, false);
  });
});

describe('ENDPOINTS', () => {
  it('names the paths of the design', () => {
    assert.deepStrictEqual(
      { ...ENDPOINTS },
      {
        'files.apply': '/v1/files/apply',
        'files.read': '/v1/files/read',
        'files.list': '/v1/files/list',
        'files.stat': '/v1/files/stat',
        'files.busy': '/v1/files/busy',
      },
    );
  });
});

describe('errorBodySchema', () => {
  it('accepts { error: { code, message } } and nothing more', () => {
    const body = { error: { code: 'expired', message: 'too old' } };
    assert.deepStrictEqual(errorBodySchema.parse(body), body);
    assert.equal(errorBodySchema.safeParse({ ...body, extra: 1 }).success, false);
    assert.equal(errorBodySchema.safeParse({ error: { ...body.error, stack: '' } }).success, false);
  });
});

describe('answers: what a controller reads of each kind', () => {
  const header = { requestId: info.hostUuid, hostUuid: info.hostUuid };
  const failedWith = (message: string) => ({
    op: 'delete',
    type: 'NvRam',
    path: '/n/a_VARS.fd',
    status: 'failed',
    error: { code: 'io_error', message },
  });
  it("an op error message is read to MAX_MESSAGE_LENGTH characters: a longer one (an older agent's) is clipped", () => {
    const answer = (message: string) => ({ ...header, kind: 'files.apply', results: [failedWith(message)] });
    const messageOf = (text: string): string | undefined =>
      applyAnswerSchema.parse(answer(text)).results[0]?.error?.message;
    assert.equal(messageOf('x'.repeat(MAX_MESSAGE_LENGTH)), 'x'.repeat(MAX_MESSAGE_LENGTH));
    const clipped = messageOf('x'.repeat(5000)) ?? '';
    assert.ok(clipped.length <= MAX_MESSAGE_LENGTH, `${clipped.length}`);
    assert.match(clipped, /^x{960}…\(truncated, 5000 chars\)$/);
  });
  it('at most MAX_OPS results, as a command has at most MAX_OPS ops', () => {
    const answer = (n: number) => ({ ...header, kind: 'files.apply', results: Array(n).fill(failedWith('no')) });
    assert.ok(applyAnswerSchema.safeParse(answer(MAX_OPS)).success);
    assert.ok(!applyAnswerSchema.safeParse(answer(MAX_OPS + 1)).success);
  });
  it('a cap in bytes per kind: an apply, stat or busy answer grows with its states, a read or a listing does not', () => {
    for (const kind of ['files.apply', 'files.stat', 'files.busy'] as const) {
      assert.ok(answerByteCap(kind, 1) < 256 * 1024, kind);
      assert.ok(answerByteCap(kind, 10) > answerByteCap(kind, 1), kind);
      assert.ok(answerByteCap(kind, MAX_OPS) <= MAX_ANSWER_BYTES, kind);
    }
    // The longest result possible fits its share: a path and a message of characters JSON escapes to six bytes each.
    const longest = { ...header, kind: 'files.apply', results: [failedWith('\u0001'.repeat(MAX_MESSAGE_LENGTH))] };
    longest.results[0] = { ...longest.results[0], path: `/${'\u0001'.repeat(MAX_PATH_LENGTH - 1)}` } as never;
    assert.ok(applyAnswerSchema.safeParse(longest).success);
    const enveloped = Buffer.from(JSON.stringify(longest)).toString('base64').length + 200;
    assert.ok(enveloped <= answerByteCap('files.apply', 1), `${enveloped} bytes`);
    assert.equal(answerByteCap('files.read', 1), MAX_ANSWER_BYTES);
    assert.equal(answerByteCap('files.list', 0), MAX_ANSWER_BYTES);
  });
});

// Envelopes: node:crypto signatures byte-identical to tweetnacl's, context separation, verification, parsing.
import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { describe, it } from 'node:test';
import nacl from 'tweetnacl';
import type { Envelope } from '../protocol/schemas.js';
import {
  ANSWER_CONTEXT,
  COMMAND_CONTEXT,
  parseEnvelope,
  signEnvelope,
  signedBytes,
  verifyEnvelope,
  withVerifiedPayload,
} from './envelope.js';
import { publicKeyFromRaw, signingKeyFromPem, type SigningKey } from './keys.js';

const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
// The order of the Ed25519 group: a signature's S must be below it.
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

interface TestKey {
  readonly signing: SigningKey;
  readonly pair: nacl.SignKeyPair;
  readonly publicKey: KeyObject;
}

/** One seed, two libraries: tweetnacl's key pair and node:crypto's key read from a PKCS#8 PEM. */
function testKey(seed: Uint8Array = nacl.randomBytes(32)): TestKey {
  const pair = nacl.sign.keyPair.fromSeed(seed);
  const pem = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' })
    .export({ format: 'pem', type: 'pkcs8' })
    .toString();
  return { signing: signingKeyFromPem(pem), pair, publicKey: publicKeyFromRaw(pair.publicKey) };
}

const lookupOf =
  (...keys: TestKey[]) =>
  (keyId: string): KeyObject | undefined =>
    keys.find((k) => k.signing.keyId === keyId)?.publicKey;

const utf8 = (text: string) => Buffer.from(text, 'utf8');
const concat = (...parts: Uint8Array[]) => Buffer.concat(parts);

function expectError(result: { ok: boolean; error?: { code: string } }, code: string): void {
  assert.equal(result.ok, false, `expected ${code}`);
  assert.equal(result.error?.code, code);
}

const COMMAND_PAYLOAD = {
  kind: 'files.list',
  hostUuid: '6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6b',
  requestId: '0f8fad5b-d9cb-469f-a165-70867728950e',
  issuedAt: 1764000000000,
  expiresAt: 1764000060000,
  types: ['TpmState'],
};

describe('signEnvelope and tweetnacl', () => {
  const contexts = [
    ['command', COMMAND_CONTEXT],
    ['answer', ANSWER_CONTEXT],
  ] as const;
  const payloads: readonly Uint8Array[] = [
    utf8(JSON.stringify(COMMAND_PAYLOAD)),
    utf8('{"é":"€😀"}'),
    utf8('x'),
    nacl.randomBytes(1000),
  ];

  for (const [name, context] of contexts) {
    it(`makes the ${name} signature tweetnacl makes over the context and the payload`, () => {
      for (let i = 0; i < 10; i++) {
        const key = testKey();
        for (const payload of payloads) {
          const envelope = signEnvelope(context, payload, key.signing);
          const expected = nacl.sign.detached(concat(utf8(context), payload), key.pair.secretKey);
          assert.deepStrictEqual(Buffer.from(envelope.signature, 'base64'), Buffer.from(expected));
          assert.deepStrictEqual(Buffer.from(envelope.payload, 'base64'), Buffer.from(payload));
          assert.equal(envelope.keyId, key.signing.keyId);
        }
      }
    });

    it(`makes ${name} signatures that tweetnacl verifies with the context, and only with it`, () => {
      const key = testKey();
      const payload = payloads[0] ?? assert.fail('no payload');
      const signature = Buffer.from(signEnvelope(context, payload, key.signing).signature, 'base64');
      assert.equal(nacl.sign.detached.verify(concat(utf8(context), payload), signature, key.pair.publicKey), true);
      assert.equal(nacl.sign.detached.verify(payload, signature, key.pair.publicKey), false);
    });
  }

  it('signs the two contexts differently', () => {
    const key = testKey();
    const payload = utf8(JSON.stringify(COMMAND_PAYLOAD));
    const command = signEnvelope(COMMAND_CONTEXT, payload, key.signing);
    const answer = signEnvelope(ANSWER_CONTEXT, payload, key.signing);
    assert.equal(command.payload, answer.payload);
    assert.notEqual(command.signature, answer.signature);
  });

  it('signs an object as its JSON.stringify bytes, once', () => {
    const key = testKey();
    const envelope = signEnvelope(COMMAND_CONTEXT, COMMAND_PAYLOAD, key.signing);
    const bytes = utf8(JSON.stringify(COMMAND_PAYLOAD));
    assert.deepStrictEqual(Buffer.from(envelope.payload, 'base64'), bytes);
    const expected = nacl.sign.detached(concat(utf8(COMMAND_CONTEXT), bytes), key.pair.secretKey);
    assert.deepStrictEqual(Buffer.from(envelope.signature, 'base64'), Buffer.from(expected));
  });

  it('uses the exact context strings of the protocol', () => {
    assert.equal(COMMAND_CONTEXT, 'hostfiles/v1/command\n');
    assert.equal(ANSWER_CONTEXT, 'hostfiles/v1/answer\n');
    assert.deepStrictEqual(signedBytes(COMMAND_CONTEXT, utf8('{}')), utf8('hostfiles/v1/command\n{}'));
    assert.deepStrictEqual(signedBytes(ANSWER_CONTEXT, utf8('{}')), utf8('hostfiles/v1/answer\n{}'));
  });
});

describe('verifyEnvelope', () => {
  const key = testKey();
  const other = testKey();
  const lookup = lookupOf(key, other);

  it('returns the payload bytes exactly as signed', () => {
    // Odd spacing and key order: what comes back are these bytes, never a re-serialization.
    const bytes = utf8('{ "types":["NvRam"] ,"kind" : "files.list"}\n');
    for (const context of [COMMAND_CONTEXT, ANSWER_CONTEXT] as const) {
      const result = verifyEnvelope(signEnvelope(context, bytes, key.signing), context, lookup);
      assert.deepStrictEqual(result, { ok: true, value: bytes });
    }
  });

  it('verifies an envelope signed by tweetnacl', () => {
    const payload = utf8(JSON.stringify(COMMAND_PAYLOAD));
    const signature = nacl.sign.detached(concat(utf8(COMMAND_CONTEXT), payload), key.pair.secretKey);
    const envelope: Envelope = {
      keyId: key.signing.keyId,
      payload: payload.toString('base64'),
      signature: Buffer.from(signature).toString('base64'),
    };
    assert.deepStrictEqual(verifyEnvelope(envelope, COMMAND_CONTEXT, lookup), { ok: true, value: payload });
  });

  it('picks the key named by keyId among several', () => {
    const envelope = signEnvelope(COMMAND_CONTEXT, COMMAND_PAYLOAD, other.signing);
    assert.equal(verifyEnvelope(envelope, COMMAND_CONTEXT, lookup).ok, true);
    assert.equal(verifyEnvelope(envelope, COMMAND_CONTEXT, lookupOf(key)).ok, false);
  });

  it('answers unknown_key when no trusted key has the keyId', () => {
    const stranger = testKey();
    const envelope = signEnvelope(COMMAND_CONTEXT, COMMAND_PAYLOAD, stranger.signing);
    expectError(verifyEnvelope(envelope, COMMAND_CONTEXT, lookup), 'unknown_key');
    expectError(
      verifyEnvelope(envelope, COMMAND_CONTEXT, () => undefined),
      'unknown_key',
    );
  });

  it('asks the lookup for the envelope keyId', () => {
    const asked: string[] = [];
    const envelope = signEnvelope(COMMAND_CONTEXT, COMMAND_PAYLOAD, key.signing);
    verifyEnvelope(envelope, COMMAND_CONTEXT, (keyId) => {
      asked.push(keyId);
      return undefined;
    });
    assert.deepStrictEqual(asked, [key.signing.keyId]);
  });

  it('refuses a command signature as an answer, and an answer signature as a command', () => {
    const command = signEnvelope(COMMAND_CONTEXT, COMMAND_PAYLOAD, key.signing);
    const answer = signEnvelope(ANSWER_CONTEXT, COMMAND_PAYLOAD, key.signing);
    assert.equal(verifyEnvelope(command, COMMAND_CONTEXT, lookup).ok, true);
    assert.equal(verifyEnvelope(answer, ANSWER_CONTEXT, lookup).ok, true);
    expectError(verifyEnvelope(command, ANSWER_CONTEXT, lookup), 'bad_signature');
    expectError(verifyEnvelope(answer, COMMAND_CONTEXT, lookup), 'bad_signature');
  });

  it('answers bad_signature for a tampered payload', () => {
    const bytes = utf8(JSON.stringify(COMMAND_PAYLOAD));
    const envelope = signEnvelope(COMMAND_CONTEXT, bytes, key.signing);
    assert.equal(verifyEnvelope(envelope, COMMAND_CONTEXT, lookup).ok, true);
    const changes = [
      utf8(JSON.stringify({ ...COMMAND_PAYLOAD, types: ['NvRam'] })),
      utf8(`${JSON.stringify(COMMAND_PAYLOAD)} `),
      bytes.subarray(0, bytes.length - 1),
      Buffer.from(bytes.map((b, i) => (i === 10 ? b ^ 1 : b))),
    ];
    for (const changed of changes) {
      expectError(
        verifyEnvelope({ ...envelope, payload: changed.toString('base64') }, COMMAND_CONTEXT, lookup),
        'bad_signature',
      );
    }
  });

  it('answers bad_signature for a tampered signature', () => {
    const envelope = signEnvelope(COMMAND_CONTEXT, COMMAND_PAYLOAD, key.signing);
    const signature = Buffer.from(envelope.signature, 'base64');
    for (const index of [0, 31, 32, 63]) {
      const changed = Buffer.from(signature);
      changed[index] = (changed[index] ?? 0) ^ 0x01;
      expectError(
        verifyEnvelope({ ...envelope, signature: changed.toString('base64') }, COMMAND_CONTEXT, lookup),
        'bad_signature',
      );
    }
    for (const fill of [0x00, 0xff]) {
      const junk = Buffer.alloc(64, fill).toString('base64');
      expectError(verifyEnvelope({ ...envelope, signature: junk }, COMMAND_CONTEXT, lookup), 'bad_signature');
    }
  });

  it('answers bad_signature when the keyId names a different key', () => {
    const envelope = signEnvelope(COMMAND_CONTEXT, COMMAND_PAYLOAD, key.signing);
    const wrongKey = () => other.publicKey;
    expectError(verifyEnvelope(envelope, COMMAND_CONTEXT, wrongKey), 'bad_signature');
  });

  it('answers bad_signature, not an exception, when the trusted key cannot verify Ed25519', () => {
    const envelope = signEnvelope(COMMAND_CONTEXT, COMMAND_PAYLOAD, key.signing);
    const x25519 = generateKeyPairSync('x25519').publicKey;
    expectError(
      verifyEnvelope(envelope, COMMAND_CONTEXT, () => x25519),
      'bad_signature',
    );
  });

  it('refuses a non-canonical signature (S + L) that tweetnacl accepts', () => {
    const payload = utf8(JSON.stringify(COMMAND_PAYLOAD));
    const envelope = signEnvelope(COMMAND_CONTEXT, payload, key.signing);
    const signature = Buffer.from(envelope.signature, 'base64');
    const s = BigInt(`0x${Buffer.from(signature.subarray(32)).reverse().toString('hex')}`);
    assert.ok(s < L);
    const sPlusL = Buffer.from((s + L).toString(16).padStart(64, '0'), 'hex').reverse();
    assert.equal(sPlusL.length, 32);
    const malleable = Buffer.concat([signature.subarray(0, 32), sPlusL]);
    assert.notDeepStrictEqual(malleable, signature);

    const message = concat(utf8(COMMAND_CONTEXT), payload);
    // Why signing and verifying go through node:crypto: tweetnacl takes both signatures.
    assert.equal(nacl.sign.detached.verify(message, signature, key.pair.publicKey), true);
    assert.equal(nacl.sign.detached.verify(message, malleable, key.pair.publicKey), true);

    assert.equal(verifyEnvelope(envelope, COMMAND_CONTEXT, lookup).ok, true);
    expectError(
      verifyEnvelope({ ...envelope, signature: malleable.toString('base64') }, COMMAND_CONTEXT, lookup),
      'bad_signature',
    );
  });
});

describe('parseEnvelope', () => {
  const key = testKey();
  const envelope = signEnvelope(COMMAND_CONTEXT, COMMAND_PAYLOAD, key.signing);
  const body = (fields: Record<string, unknown>) => JSON.stringify({ ...envelope, ...fields });

  it('parses a signed envelope, which then verifies', () => {
    const parsed = parseEnvelope(JSON.stringify(envelope));
    if (!parsed.ok) assert.fail(parsed.error.message);
    assert.deepStrictEqual(parsed.value, envelope);
    assert.equal(verifyEnvelope(parsed.value, COMMAND_CONTEXT, lookupOf(key)).ok, true);
    // Field order and whitespace are free.
    const reordered = `{\n  "signature": "${envelope.signature}",\n  "payload": "${envelope.payload}",\n  "keyId": "${envelope.keyId}"\n}\n`;
    assert.deepStrictEqual(parseEnvelope(reordered), { ok: true, value: envelope });
  });

  it('returns a plain object', () => {
    const parsed = parseEnvelope(JSON.stringify(envelope));
    assert.ok(parsed.ok);
    assert.equal(Object.getPrototypeOf(parsed.value), Object.prototype);
  });

  it('refuses duplicate keys, even with the same value', () => {
    const json = JSON.stringify(envelope);
    const other = testKey();
    const cases = [
      json.replace('{', `{"keyId":"${other.signing.keyId}",`),
      json.replace('{', `{"keyId":"${envelope.keyId}",`),
      json.replace('{', `{"payload":"${Buffer.from('{}').toString('base64')}",`),
      json.replace('{', `{"signature":"${envelope.signature}",`),
    ];
    for (const text of cases) {
      assert.equal(JSON.parse(text) !== null, true, 'JSON.parse would take it');
      const result = parseEnvelope(text);
      expectError(result, 'bad_request');
      if (!result.ok) assert.match(result.error.message, /duplicate key/);
    }
  });

  it('refuses unknown fields', () => {
    expectError(parseEnvelope(body({ context: 'command' })), 'bad_request');
    expectError(parseEnvelope(body({ alg: 'none' })), 'bad_request');
    expectError(parseEnvelope(`{"__proto__":{},${JSON.stringify(envelope).slice(1)}`), 'bad_request');
  });

  it('refuses missing fields and bodies that are not objects', () => {
    for (const field of ['keyId', 'payload', 'signature'] as const) {
      const partial = Object.fromEntries(Object.entries(envelope).filter(([name]) => name !== field));
      expectError(parseEnvelope(JSON.stringify(partial)), 'bad_request');
    }
    for (const text of ['', 'null', '[]', '"envelope"', '42', `[${JSON.stringify(envelope)}]`]) {
      expectError(parseEnvelope(text), 'bad_request');
    }
  });

  it('refuses text that is not JSON', () => {
    expectError(parseEnvelope(`${JSON.stringify(envelope)}x`), 'bad_request');
    expectError(parseEnvelope(JSON.stringify(envelope).slice(0, -1)), 'bad_request');
  });

  it('refuses bad base64 in the payload', () => {
    const bytes = Buffer.from(JSON.stringify(COMMAND_PAYLOAD));
    const cases = [
      bytes.toString('base64url'),
      bytes.toString('base64').replace(/=+$/, ''),
      `${bytes.toString('base64')}=`,
      `${bytes.toString('base64')}\n`,
      `${bytes.toString('base64').slice(0, 8)} ${bytes.toString('base64').slice(8)}`,
      '****',
      '',
    ];
    for (const payload of cases) {
      if (payload === bytes.toString('base64')) continue;
      expectError(parseEnvelope(body({ payload })), 'bad_request');
    }
    expectError(parseEnvelope(body({ payload: 123 })), 'bad_request');
  });

  it('refuses bad base64 in the signature, and signatures that are not 64 bytes', () => {
    const signature = Buffer.from(envelope.signature, 'base64');
    const cases = [
      signature.toString('base64url'),
      envelope.signature.replace(/=+$/, ''),
      `${envelope.signature.slice(0, 86)}!!`,
      // 65 and 66 bytes are 88 base64 characters too.
      Buffer.concat([signature, Buffer.alloc(1)]).toString('base64'),
      Buffer.concat([signature, Buffer.alloc(2)]).toString('base64'),
      signature.subarray(0, 63).toString('base64'),
      '',
    ];
    for (const value of cases) {
      assert.notEqual(value, envelope.signature);
      expectError(parseEnvelope(body({ signature: value })), 'bad_request');
    }
  });

  it('refuses a second spelling of the same signature bytes (non-zero padding bits)', () => {
    const last = envelope.signature.charAt(85);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const spelled = `${envelope.signature.slice(0, 85)}${alphabet.charAt(alphabet.indexOf(last) ^ 1)}==`;
    assert.deepStrictEqual(Buffer.from(spelled, 'base64'), Buffer.from(envelope.signature, 'base64'));
    expectError(parseEnvelope(body({ signature: spelled })), 'bad_request');
  });

  it('refuses a keyId that is not 16 lowercase hex digits', () => {
    const id = envelope.keyId;
    const cases = [
      id.toUpperCase(),
      id.slice(0, 15),
      `${id}0`,
      `${id.slice(0, 15)}g`,
      ` ${id.slice(1)}`,
      '',
      'z'.repeat(16),
    ];
    for (const keyId of cases) {
      if (keyId === id) continue;
      expectError(parseEnvelope(body({ keyId })), 'bad_request');
    }
    expectError(parseEnvelope(body({ keyId: 1234567890123456 })), 'bad_request');
  });
});

describe('verifyEnvelope with a scratch buffer', () => {
  it('decodes into the scratch, and hands out a copy of a payload that verifies', () => {
    const key = testKey();
    const scratch = Buffer.alloc(4096);
    const calls: number[] = [];
    const take = (bytes: number): Buffer => {
      calls.push(bytes);
      return scratch;
    };
    const good = signEnvelope(COMMAND_CONTEXT, COMMAND_PAYLOAD, key.signing);
    const result = verifyEnvelope(good, COMMAND_CONTEXT, lookupOf(key), take);
    assert.ok(result.ok);
    assert.deepStrictEqual(JSON.parse(result.value.toString()), COMMAND_PAYLOAD);
    assert.notEqual(result.value.buffer, scratch.buffer, 'a copy, not a view of the scratch');
    const other = signEnvelope(COMMAND_CONTEXT, { other: true }, key.signing);
    expectError(
      verifyEnvelope({ ...good, signature: other.signature }, COMMAND_CONTEXT, lookupOf(key), take),
      'bad_signature',
    );
    assert.deepStrictEqual(JSON.parse(result.value.toString()), COMMAND_PAYLOAD, 'untouched by the next call');
    assert.equal(calls.length, 2);
    assert.equal(calls[0], COMMAND_CONTEXT.length + Buffer.from(good.payload, 'base64').length);
  });

  it('withVerifiedPayload hands the payload to `use` where it lies in the scratch, and never one that fails', () => {
    const key = testKey();
    const scratch = Buffer.alloc(4096);
    const good = signEnvelope(COMMAND_CONTEXT, COMMAND_PAYLOAD, key.signing);
    const seen: Buffer[] = [];
    const result = withVerifiedPayload(
      good,
      COMMAND_CONTEXT,
      lookupOf(key),
      () => scratch,
      (payload) => {
        seen.push(payload);
        return JSON.parse(payload.toString()) as unknown;
      },
    );
    assert.ok(result.ok);
    assert.deepStrictEqual(result.value, COMMAND_PAYLOAD);
    const [payload] = seen;
    assert.ok(payload !== undefined);
    assert.equal(payload.buffer, scratch.buffer, 'a view of the scratch, no copy');
    assert.equal(payload.byteOffset, COMMAND_CONTEXT.length, 'right after the signed context');
    const other = signEnvelope(COMMAND_CONTEXT, { other: true }, key.signing);
    const refused = withVerifiedPayload(
      { ...good, signature: other.signature },
      COMMAND_CONTEXT,
      lookupOf(key),
      () => scratch,
      (payload) => seen.push(payload),
    );
    expectError(refused, 'bad_signature');
    assert.equal(seen.length, 1, '`use` never sees a payload that does not verify');
  });
});

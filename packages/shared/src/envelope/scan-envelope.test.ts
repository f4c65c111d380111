// The envelope pre-parse against the general strict-JSON parser and envelopeSchema it replaced: the same verdict and
// the same envelope on valid bodies and on mangled ones (seeded, so a failure repeats), and an early stop on hostile ones.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { envelopeSchema, type Envelope } from '../protocol/schemas.js';
import { parseStrictJson } from '../protocol/strict-json.js';
import { COMMAND_CONTEXT, parseEnvelope, signEnvelope } from './envelope.js';
import { generateSigningKey } from './keys.js';
import { scanEnvelope } from './scan-envelope.js';
import { seeded } from '../util/seeded.js';

/** What parseEnvelope did before the pre-parse: the whole value built, then the shape checked. */
function oldParse(text: string): Envelope | undefined {
  const json = parseStrictJson(text);
  if (!json.ok) return undefined;
  const parsed = envelopeSchema.safeParse(json.value);
  return parsed.success ? parsed.data : undefined;
}

function agree(text: string): boolean {
  const before = oldParse(text);
  const now = scanEnvelope(text);
  assert.equal(now.ok, before !== undefined, `verdicts differ on ${JSON.stringify(text.slice(0, 300))}`);
  if (now.ok) assert.deepStrictEqual(now.value, before);
  return now.ok;
}

const keys = [generateSigningKey(), generateSigningKey(), generateSigningKey()];
const WHITESPACE = [' ', '\t', '\n', '\r', '  ', ''];
const FIELDS = ['keyId', 'payload', 'signature'] as const;

/** A signed envelope written as any sender might: any member order, any whitespace, optional escapes. */
function spell(random: () => number, envelope: Envelope, escape: boolean): string {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const ws = (): string => (random() < 0.5 ? '' : pick(WHITESPACE));
  const text = (value: string): string => {
    const json = JSON.stringify(value);
    if (!escape) return json;
    // `\/` and `\uXXXX` are other spellings of the same string.
    return json.replace(/[^"]/g, (c) => {
      if (random() > 0.05) return c;
      if (c === '/') return '\\/';
      return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
    });
  };
  const order = [...FIELDS].sort(() => random() - 0.5);
  const members = order.map((field) => `${ws()}${text(field)}${ws()}:${ws()}${text(envelope[field])}${ws()}`);
  return `${ws()}{${members.join(',')}}${ws()}`;
}

function validBodies(random: () => number, count: number): string[] {
  const bodies: string[] = [];
  for (let i = 0; i < count; i++) {
    const key = keys[i % keys.length];
    if (key === undefined) continue;
    const payload = Buffer.alloc(1 + Math.floor(random() * 600));
    for (let j = 0; j < payload.length; j++) payload[j] = Math.floor(random() * 256);
    const envelope = signEnvelope(COMMAND_CONTEXT, random() < 0.5 ? payload : { n: i, text: 'a/b+c' }, key);
    bodies.push(i % 4 === 0 ? JSON.stringify(envelope) : spell(random, envelope, i % 2 === 1));
  }
  return bodies;
}

const INSERTS = [
  '{',
  '}',
  '[',
  ']',
  '"',
  ':',
  ',',
  '\\',
  ' ',
  '\n',
  'a',
  '0',
  '=',
  '/',
  'null',
  '1e3',
  '\u0001',
  '"x":"y",',
];

/** One small damage: a character dropped, something inserted, the text cut, a member added or a value replaced. */
function mangle(random: () => number, body: string): string {
  const at = Math.floor(random() * (body.length + 1));
  const choice = Math.floor(random() * 6);
  const insert = INSERTS[Math.floor(random() * INSERTS.length)] ?? '';
  if (choice === 0) return body.slice(0, at) + body.slice(at + 1);
  if (choice === 1) return body.slice(0, at) + insert + body.slice(at);
  if (choice === 2) return body.slice(0, at);
  if (choice === 3) return body.replace('{', `{"${FIELDS[at % 3] ?? 'keyId'}":"AAAA",`);
  if (choice === 4) return body.replace(/"(keyId|payload|signature)"\s*:\s*"[^"]*"/, '"$1":{"a":"b"}');
  return body.replace(/}\s*$/, ',"extra":"x"}');
}

describe('scanEnvelope against the general parser', () => {
  it('accepts every valid spelling the general parser accepts, with the same envelope', () => {
    const random = seeded(7);
    for (const body of validBodies(random, 400)) assert.equal(agree(body), true);
  });

  it('gives the general parser verdict on mangled bodies', () => {
    const random = seeded(11);
    let refused = 0;
    for (const body of validBodies(random, 300)) {
      for (let i = 0; i < 10; i++) {
        let text = mangle(random, body);
        if (random() < 0.3) text = mangle(random, text);
        if (!agree(text)) refused++;
      }
    }
    assert.ok(refused > 1000, `most mangled bodies are refused (${refused})`);
  });

  it('gives the same verdict on bytes read as latin1 (as the agent reads them) as the general parser on UTF-8', () => {
    const random = seeded(13);
    const foreign = [[0xc3, 0xa9], [0xff], [0xef, 0xbb, 0xbf], [0xe2, 0x80, 0xa8], [0x80], [0xf0, 0x9f, 0x98, 0x80]];
    let accepted = 0;
    for (const body of validBodies(random, 200)) {
      for (let i = 0; i < 5; i++) {
        const bytes = Buffer.from(i === 0 ? body : mangle(random, body), 'utf8');
        const at = Math.floor(random() * (bytes.length + 1));
        const insert = Buffer.from(foreign[Math.floor(random() * foreign.length)] ?? []);
        const text = i < 2 ? bytes : Buffer.concat([bytes.subarray(0, at), insert, bytes.subarray(at)]);
        const before = oldParse(text.toString('utf8'));
        const now = scanEnvelope(text.toString('latin1'));
        assert.equal(now.ok, before !== undefined, `verdicts differ on ${text.toString('hex').slice(0, 200)}`);
        if (now.ok) {
          assert.deepStrictEqual(now.value, before);
          accepted++;
        }
      }
    }
    assert.ok(accepted >= 200, `the valid bodies are accepted (${accepted})`);
  });

  it('accepts exactly what the controller sends', () => {
    for (const key of keys) {
      const envelope = signEnvelope(COMMAND_CONTEXT, { kind: 'files.list', types: ['TpmState'] }, key);
      assert.deepStrictEqual(scanEnvelope(JSON.stringify(envelope)), { ok: true, value: envelope });
    }
  });
});

describe('scanEnvelope on hostile bodies', () => {
  const envelope = signEnvelope(COMMAND_CONTEXT, Buffer.from('{}'), generateSigningKey());
  const position = (text: string): number => {
    const result = scanEnvelope(text);
    assert.equal(result.ok, false);
    return Number(/ at (\d+)$/.exec(result.error)?.[1]);
  };

  it('stops at the first unknown key, however many follow, and says it briefly', () => {
    const manyKeys = `{${Array.from({ length: 200_000 }, (_, i) => `"k${i}":1`).join(',')}}`;
    const result = parseEnvelope(manyKeys);
    assert.equal(result.ok, false);
    assert.equal(result.error.code, 'bad_request');
    assert.equal(result.error.message, 'not an envelope: unknown key "k0" at 5');
  });

  it('stops at a fourth member, a value that is not a string, or nesting, before reading on', () => {
    const members = JSON.stringify(envelope).slice(0, -1);
    const rest = ` ${'x'.repeat(1_000_000)}`;
    assert.equal(position(`${members},"keyId":"0000000000000000"${rest}`), members.length + 8);
    assert.equal(position(`${members},"other":"0000000000000000"${rest}`), members.length + 8);
    assert.equal(position(`{"keyId":{"keyId":{"keyId":${rest}`), 9);
    assert.equal(position(`{"payload":12${rest}`), 11);
    assert.equal(position(`{"signature":[${rest}`), 13);
  });

  it('echoes only a prefix of a long unknown key, and reads no further than a field name can be', () => {
    const long = 'k'.repeat(1_000_000);
    const result = scanEnvelope(`{"${long}":"x"}`);
    assert.equal(result.ok, false);
    assert.ok(result.error.length < 200, result.error);
    assert.match(result.error, /^unknown key "k{64}…", longer than any field name at 1$/);
  });

  it('refuses duplicate keys, however spelled', () => {
    const json = JSON.stringify(envelope);
    for (const text of [
      json.replace('{', `{"keyId":"${envelope.keyId}",`),
      json.replace('"keyId"', '"key\\u0049d"').replace('{', `{"keyId":"${envelope.keyId}",`),
    ]) {
      const result = scanEnvelope(text);
      assert.equal(result.ok, false);
      assert.match(result.error, /duplicate key "keyId"/);
    }
  });
});

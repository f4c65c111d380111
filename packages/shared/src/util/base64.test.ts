// isStrictBase64 against the regular expression it replaces: every character in every kind of place.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isStrictBase64 } from './base64.js';
import { seeded } from './seeded.js';

const EXPRESSION = /^[A-Za-z0-9+/]*={0,2}$/;
const reference = (text: string): boolean => text.length % 4 === 0 && EXPRESSION.test(text);

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
/** Every Latin-1 character, and wider ones whose low byte is base64 or `=` (Node's decoder reads only that byte). */
const CHARACTERS = [
  ...Array.from({ length: 256 }, (_, code) => String.fromCharCode(code)),
  ...[0x12b, 0x141, 0x13d, 0x2028, 0xff0b, 0xd800, 0x3d3d].map((code) => String.fromCharCode(code)),
];

function agrees(text: string): void {
  assert.equal(isStrictBase64(text), reference(text), JSON.stringify(text.length > 80 ? text.slice(0, 80) : text));
}

describe('isStrictBase64', () => {
  it('agrees with the expression on every character put in, or in place of, any position of short strings', () => {
    const random = seeded(5);
    for (let length = 0; length <= 12; length++) {
      for (let round = 0; round < 12; round++) {
        let text = Array.from({ length }, () => ALPHABET[Math.floor(random() * 64)]).join('');
        if (length % 4 === 0 && length > 0 && round % 3 === 1) text = `${text.slice(0, -1)}=`;
        if (length % 4 === 0 && length > 0 && round % 3 === 2) text = `${text.slice(0, -2)}==`;
        agrees(text);
        for (const character of CHARACTERS) {
          const at = Math.floor(random() * (length + 1));
          agrees(text.slice(0, at) + character + text.slice(at + 1));
          agrees(text.slice(0, at) + character + text.slice(at));
        }
      }
    }
  });

  it('agrees on padding in every place, and refuses base64url, whitespace and a wide character', () => {
    const accepted = ['', 'AAAA', 'AA==', 'AAA=', 'QUJD', 'QUI=', 'QQ==', '+/+/'];
    const refused = [
      'A',
      'AA',
      'AAA',
      '====',
      'A===',
      '=AAA',
      'A=A=',
      'AA=A',
      'AAAA=AAA',
      'AAAA====',
      'AB-_',
      'AA==\n',
    ];
    for (const text of [...accepted, ...refused, ' AA=', 'AA =', 'Ā\u012b==']) agrees(text);
    for (const text of accepted) assert.equal(isStrictBase64(text), true, text);
    for (const text of refused) assert.equal(isStrictBase64(text), false, text);
  });

  it('agrees on texts longer than one chunk: a bad character or padding on either side of a chunk boundary', () => {
    const valid = Buffer.from(Array.from({ length: 150_000 }, (_, i) => (i * 7919) & 255)).toString('base64');
    agrees(valid);
    assert.equal(isStrictBase64(valid), true);
    const chunk = 64 * 1024;
    for (const at of [0, chunk - 1, chunk, chunk + 1, 2 * chunk - 1, 2 * chunk, valid.length - 3, valid.length - 1]) {
      for (const character of ['=', '-', ' ', '*', '\u012b', '\n'])
        agrees(valid.slice(0, at) + character + valid.slice(at + 1));
    }
    agrees(`${valid.slice(0, -4)}AA==`);
    agrees(`${valid.slice(0, chunk - 2)}==${valid.slice(chunk)}`);
  });
});

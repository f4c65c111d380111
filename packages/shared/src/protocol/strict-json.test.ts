// The strict JSON parser: JSON.parse's grammar and values, minus duplicate keys and unbounded nesting.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseStrictJson } from './strict-json.js';

/** Objects come back with a null prototype; copy them onto plain objects so they compare with JSON.parse's. */
function toPlain(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(toPlain);
  if (typeof value === 'object' && value !== null) {
    const plain: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value)) {
      Object.defineProperty(plain, key, {
        value: toPlain(inner),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return plain;
  }
  return value;
}

function parsed(text: string): unknown {
  const result = parseStrictJson(text);
  if (!result.ok) assert.fail(`expected ${JSON.stringify(text)} to parse, got: ${result.error}`);
  return result.value;
}

function refused(text: string, message?: RegExp): void {
  const result = parseStrictJson(text);
  if (result.ok) assert.fail(`expected ${JSON.stringify(text)} to be refused`);
  if (message !== undefined) assert.match(result.error, message);
}

const nested = (depth: number, open: string, close: string): string => open.repeat(depth) + close.repeat(depth);

describe('parseStrictJson', () => {
  describe('agrees with JSON.parse on valid JSON', () => {
    const inputs = [
      'null',
      'true',
      'false',
      '0',
      '-0',
      '1',
      '-1',
      '123456789',
      '3.25',
      '-0.5',
      '1e3',
      '1E3',
      '1e+3',
      '1e-3',
      '-1.5E-10',
      '9007199254740993',
      '1e400',
      '""',
      '"plain"',
      '"with \\"quotes\\" inside"',
      '"\\\\"',
      '"a\\\\"',
      '"\\\\\\""',
      '"\\/\\b\\f\\n\\r\\t"',
      '"\\u0041\\u00e9\\u20ac"',
      '"\\ud83d\\ude00"',
      '"\\ud800"',
      '"é€😀 raw unicode"',
      '"\u2028\u2029"',
      '"\\u0000"',
      '[]',
      '{}',
      '[[]]',
      '[{}]',
      '{"a":{}}',
      '{"a":[]}',
      '[1,"two",true,false,null,{"x":[]}]',
      '{"a":1,"b":"two","c":[1,2,{"d":null}],"e":{"f":{"g":false}}}',
      '{"":1}',
      '{"a b":1,"é":2,"\\u0063":3}',
      '{"a\\\\":1,"b":"\\\\"}',
      ' \t\r\n{ \t\r\n"a" \t\r\n: \t\r\n[ 1 , 2 ] \t\r\n, "b" : { } } \t\r\n',
      '  7  ',
      '{"kind":"files.apply","ops":[{"op":"delete","type":"NvRam","path":"/var/lib/x"}]}',
    ];
    for (const input of inputs) {
      it(`parses ${input.length > 60 ? `${input.slice(0, 60)}…` : input}`, () => {
        assert.deepStrictEqual(toPlain(parsed(input)), JSON.parse(input));
      });
    }

    it('keeps -0 as -0, as JSON.parse does', () => {
      assert.ok(Object.is(parsed('-0'), -0));
    });

    it('keeps key order', () => {
      assert.deepStrictEqual(Object.keys(parsed('{"z":1,"a":2,"m":3}') as object), ['z', 'a', 'm']);
    });

    it('parses a string ending in an escaped backslash', () => {
      // The closing quote follows a backslash that is itself escaped: the string is `a\`.
      assert.equal(parsed('"a\\\\"'), 'a\\');
      assert.deepStrictEqual(toPlain(parsed('{"k":"a\\\\","l":"b"}')), { k: 'a\\', l: 'b' });
      assert.deepStrictEqual(parsed('["\\\\","\\\\\\\\"]'), ['\\', '\\\\']);
    });

    it('parses an escaped quote followed by more string', () => {
      assert.equal(parsed('"a\\"b"'), 'a"b');
      assert.equal(parsed('"\\\\\\"x"'), '\\"x');
    });
  });

  describe('refuses duplicate keys', () => {
    const inputs = [
      '{"a":1,"a":1}',
      '{"a":1,"a":2}',
      '{"a":1,"b":2,"a":3}',
      '{"a":{"b":1,"b":2}}',
      '[{"a":1},{"b":{"c":[{"d":1,"d":1}]}}]',
      '{"x":[[[{"deep":{"k":1,"k":null}}]]]}',
      // The same key spelled two ways is still the same key.
      '{"a":1,"\\u0061":2}',
      '{"é":1,"\\u00e9":2}',
      '{"":1,"":2}',
      '{"__proto__":1,"__proto__":2}',
    ];
    for (const input of inputs) {
      it(`refuses ${input}`, () => {
        refused(input, /duplicate key/);
      });
    }

    it('accepts the same key in sibling objects', () => {
      assert.deepStrictEqual(toPlain(parsed('[{"a":1},{"a":2}]')), [{ a: 1 }, { a: 2 }]);
      assert.deepStrictEqual(toPlain(parsed('{"a":{"a":{"a":1}}}')), { a: { a: { a: 1 } } });
    });
  });

  describe('refuses invalid JSON', () => {
    const inputs: readonly (readonly [string, string])[] = [
      ['empty text', ''],
      ['whitespace only', ' \n '],
      ['trailing data after an object', '{"a":1} x'],
      ['two values', '{} {}'],
      ['trailing data after a number', '1 2'],
      ['trailing comma in an object', '{"a":1,}'],
      ['trailing comma in an array', '[1,]'],
      ['leading comma', '[,1]'],
      ['missing comma', '[1 2]'],
      ['missing colon', '{"a" 1}'],
      ['unquoted key', '{a:1}'],
      ['single-quoted string', "'a'"],
      ['unterminated string', '"abc'],
      ['unterminated string ending in an escaped quote', '"abc\\"'],
      ['unterminated key', '{"abc'],
      ['unterminated array', '[1'],
      ['unterminated object', '{"a":1'],
      ['raw newline in a string', '"a\nb"'],
      ['raw tab in a string', '"a\tb"'],
      ['raw NUL in a string', '"a\u0000b"'],
      ['raw control character beside an escape', '"\\n\u0001"'],
      ['unknown escape', '"\\x41"'],
      ['escaped single quote', '"\\\'"'],
      ['short unicode escape', '"\\u12"'],
      ['bad unicode escape', '"\\uZZZZ"'],
      ['leading zero', '01'],
      ['leading zero in an array', '[01]'],
      ['negative leading zero', '-01'],
      ['leading plus', '+1'],
      ['bare minus', '-'],
      ['leading dot', '.5'],
      ['trailing dot', '1.'],
      ['empty exponent', '1e'],
      ['hex number', '0x10'],
      ['NaN', 'NaN'],
      ['Infinity', 'Infinity'],
      ['-Infinity', '-Infinity'],
      ['True', 'True'],
      ['truncated literal', 'nul'],
      ['literal with trailing letters', 'nullx'],
      ['undefined', 'undefined'],
      ['comment', '{} // c'],
      ['byte-order mark', '\ufeff{}'],
      ['non-breaking space as whitespace', '\u00a0{}'],
    ];
    for (const [what, input] of inputs) {
      it(`refuses ${what}`, () => {
        assert.throws(() => JSON.parse(input), SyntaxError, 'the fixture must be invalid for JSON.parse too');
        refused(input, /^invalid JSON at \d+: /);
      });
    }

    it('names the kind of problem', () => {
      refused('{"a":1} x', /unexpected data after the JSON value/);
      refused('"abc', /unterminated string/);
      refused('"a\nb"', /control character in string/);
      refused('"\\x"', /bad string escape/);
      refused('NaN', /unexpected character/);
    });
  });

  describe('prototypes', () => {
    it('keeps "__proto__" as an own key and pollutes nothing', () => {
      const value = parsed('{"__proto__":{"polluted":true},"a":{"__proto__":{"polluted":true}}}');
      assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
      assert.equal((Object.prototype as Record<string, unknown>)['polluted'], undefined);
      assert.ok(typeof value === 'object' && value !== null);
      assert.ok(Object.hasOwn(value, '__proto__'));
      assert.deepStrictEqual(Object.keys(value), ['__proto__', 'a']);
      const own = Object.getOwnPropertyDescriptor(value, '__proto__');
      assert.deepStrictEqual(toPlain(own?.value as unknown), { polluted: true });
      // The object's own prototype is not the one the payload named.
      assert.equal((value as Record<string, unknown>)['polluted'], undefined);
      assert.equal(Object.getPrototypeOf(value), null);
    });

    it('keeps "constructor" and "toString" as plain data', () => {
      const value = parsed('{"constructor":1,"toString":2,"hasOwnProperty":3}');
      assert.deepStrictEqual(toPlain(value), { constructor: 1, toString: 2, hasOwnProperty: 3 });
    });

    it('returns objects without a prototype, so no inherited name reads as a field', () => {
      const value = parsed('{"a":{}}') as Record<string, unknown>;
      assert.equal(Object.getPrototypeOf(value), null);
      assert.equal('toString' in value, false);
      assert.equal(Object.getPrototypeOf(value['a']), null);
    });
  });

  describe('nesting', () => {
    it('accepts 65 nested arrays and objects (depth 64 below the top)', () => {
      assert.deepStrictEqual(parsed(nested(65, '[', ']')), JSON.parse(nested(65, '[', ']')));
      const objects = `${'{"a":'.repeat(64)}{}${'}'.repeat(64)}`;
      assert.deepStrictEqual(toPlain(parsed(objects)), JSON.parse(objects));
    });

    it('refuses one level more', () => {
      refused(nested(66, '[', ']'), /nested too deeply/);
      refused(`${'{"a":'.repeat(65)}{}${'}'.repeat(65)}`, /nested too deeply/);
      refused(`${'['.repeat(65)}1${']'.repeat(65)}`, /nested too deeply/);
    });

    it('answers deep nesting with an error, not a stack overflow', () => {
      refused(nested(100_000, '[', ']'), /nested too deeply/);
      refused('{"a":'.repeat(100_000), /nested too deeply/);
    });
  });
});

describe('whitespace runs of any length and kind (long ones are skipped by a regular expression)', () => {
  it('parses as JSON.parse does around every token', () => {
    const runs = ['', ' ', '\n', ' \t', '\r\n\t ', ' '.repeat(1000), '\t\n'.repeat(500)];
    for (const run of runs) {
      const text = `${run}{${run}"a"${run}:${run}[${run}1${run},${run}"x"${run}]${run},${run}"b"${run}:${run}null${run}}${run}`;
      assert.equal(JSON.stringify(parsed(text)), JSON.stringify(JSON.parse(text)), JSON.stringify(run.slice(0, 8)));
    }
  });
  it('stops at the first character that is not JSON whitespace, whatever came before it', () => {
    for (const odd of ['\u000b', '\u000c', '\u00a0', '\u2028']) {
      refused(`${' '.repeat(100)}${odd}{}`);
    }
    assert.equal(JSON.stringify(parsed(`${' \n'.repeat(2_000_000)}{"a":1}`)), '{"a":1}', '4 MB of whitespace, a value');
  });
});

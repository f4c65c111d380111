// Check 5: verified payload bytes become a command of the endpoint's kind, or bad_request. And answers.
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { parseAnswer, parseCommand } from './payload.js';
import { MAX_OPS, MAX_PATH_LENGTH, type CommandKind } from './schemas.js';

const HOST = '6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6b';
const REQUEST = '0f8fad5b-d9cb-469f-a165-70867728950e';
const KINDS = ['files.apply', 'files.read', 'files.list', 'files.stat'] as const;

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const bytesOf = (value: unknown) => Buffer.from(JSON.stringify(value), 'utf8');

const header = { hostUuid: HOST, requestId: REQUEST, issuedAt: 1764000000000, expiresAt: 1764000060000 };
const content = Buffer.from('tpm state bytes');
const writeOp = {
  op: 'write',
  type: 'TpmState',
  path: '/var/lib/swtpm/vm-1/tpm2-00.permall',
  content: content.toString('base64'),
  sha256: sha256(content),
};
const deleteOp = { op: 'delete', type: 'NvRam', path: '/var/lib/nvram/vm-1' };
const permall = Buffer.alloc(4096, 7);
const writeDirOp = {
  op: 'writeDir',
  type: 'TpmState',
  path: '/var/lib/swtpm/6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6b',
  entries: [{ path: 'tpm2/tpm2-00.permall', content: permall.toString('base64'), sha256: sha256(permall) }],
  expect: 'absent',
};

const COMMANDS: Readonly<Record<CommandKind, Record<string, unknown>>> = {
  'files.apply': { kind: 'files.apply', ...header, ops: [writeOp, writeDirOp, deleteOp] },
  'files.read': {
    kind: 'files.read',
    ...header,
    files: [
      { type: 'TpmState', path: '/var/lib/swtpm/vm-1/tpm2-00.permall' },
      { type: 'NvRam', path: '/var/lib/nvram/vm-1/VARS.fd' },
    ],
  },
  'files.list': { kind: 'files.list', ...header, types: ['TpmState', 'NvRam'] },
  'files.stat': { kind: 'files.stat', ...header, files: [{ type: 'TpmState', path: '/var/lib/swtpm/vm-1' }] },
  'files.busy': { kind: 'files.busy', ...header, files: [{ type: 'NvRam', path: '/var/lib/nvram/vm-1/VARS.fd' }] },
};

const without = (value: Readonly<Record<string, unknown>>, field: string) =>
  Object.fromEntries(Object.entries(value).filter(([name]) => name !== field));

const apply = (fields: Record<string, unknown>) => ({ ...COMMANDS['files.apply'], ...fields });

function accepted(kind: CommandKind, value: unknown): void {
  const result = parseCommand(bytesOf(value), kind);
  if (!result.ok) assert.fail(`expected a valid ${kind} command, got: ${result.error.message}`);
  assert.deepStrictEqual(result.value, value);
}

function refused(kind: CommandKind, bytes: Uint8Array | Record<string, unknown>, message?: RegExp): void {
  const result = parseCommand(bytes instanceof Uint8Array ? bytes : bytesOf(bytes), kind);
  if (result.ok) assert.fail('expected bad_request');
  assert.equal(result.error.code, 'bad_request');
  if (message !== undefined) assert.match(result.error.message, message);
}

describe('parseCommand', () => {
  describe('valid commands', () => {
    for (const kind of KINDS) {
      it(`accepts a ${kind} command at its endpoint`, () => {
        accepted(kind, COMMANDS[kind]);
      });
    }

    it('accepts each op alone, either file type, and empty content', () => {
      accepted('files.apply', apply({ ops: [writeOp] }));
      accepted('files.apply', apply({ ops: [writeDirOp] }));
      accepted('files.apply', apply({ ops: [deleteOp] }));
      accepted(
        'files.apply',
        apply({ ops: [{ ...writeOp, type: 'NvRam', content: '', sha256: sha256(new Uint8Array(0)) }] }),
      );
      accepted('files.list', { ...COMMANDS['files.list'], types: ['NvRam'] });
    });

    it('accepts the bytes however the JSON is laid out', () => {
      const text = `\n{ "ops" : ${JSON.stringify([deleteOp])},\t"kind":"files.apply", "hostUuid":"${HOST}", "requestId":"${REQUEST}", "issuedAt":1.764e12, "expiresAt":1764000060000 }\n`;
      const result = parseCommand(Buffer.from(text), 'files.apply');
      assert.ok(result.ok);
      assert.equal(result.value.issuedAt, 1764000000000);
      assert.deepStrictEqual(result.value.ops, [deleteOp]);
    });

    it('accepts 1000 ops and 1000 files', () => {
      assert.equal(MAX_OPS, 1000);
      accepted(
        'files.apply',
        apply({ ops: Array.from({ length: 1000 }, (_, i) => ({ ...deleteOp, path: `/x/${String(i)}` })) }),
      );
      accepted('files.read', {
        ...COMMANDS['files.read'],
        files: Array.from({ length: 1000 }, () => ({ type: 'NvRam', path: '/x/y' })),
      });
    });

    it('accepts gzip content and expectations: absent or a sha256, on every op', () => {
      const digest = sha256(content);
      accepted('files.apply', apply({ ops: [{ ...writeOp, encoding: 'gzip', expect: digest }] }));
      accepted(
        'files.apply',
        apply({
          ops: [
            { ...deleteOp, expect: 'absent' },
            { ...deleteOp, expect: digest },
          ],
        }),
      );
      accepted('files.apply', apply({ ops: [{ ...writeDirOp, expect: digest }] }));
      const entry = writeDirOp.entries[0];
      accepted('files.apply', apply({ ops: [{ ...writeDirOp, entries: [{ ...entry, encoding: 'gzip' }] }] }));
    });

    it('accepts a path of the longest length', () => {
      accepted('files.apply', apply({ ops: [{ ...deleteOp, path: `/${'a'.repeat(MAX_PATH_LENGTH - 1)}` }] }));
    });

    it('accepts any version-4 requestId, whichever the case of its variant digit', () => {
      for (let i = 0; i < 20; i++) accepted('files.list', { ...COMMANDS['files.list'], requestId: randomUUID() });
      for (const variant of ['8', '9', 'a', 'b']) {
        accepted('files.list', {
          ...COMMANDS['files.list'],
          requestId: `0f8fad5b-d9cb-469f-${variant}165-70867728950e`,
        });
      }
    });
  });

  describe('the kind must be the endpoint kind', () => {
    for (const sent of KINDS) {
      for (const endpoint of KINDS) {
        if (sent === endpoint) continue;
        it(`refuses a ${sent} command at the ${endpoint} endpoint`, () => {
          refused(endpoint, COMMANDS[sent], new RegExp(`${sent} command sent to the ${endpoint} endpoint`));
        });
      }
    }

    it('refuses an unknown or missing kind', () => {
      refused('files.apply', apply({ kind: 'files.delete' }));
      refused('files.apply', apply({ kind: 'FILES.APPLY' }));
      refused('files.apply', without(COMMANDS['files.apply'], 'kind'));
    });
  });

  describe('unknown fields', () => {
    it('refuses an unknown field in the command', () => {
      for (const kind of KINDS) refused(kind, { ...COMMANDS[kind], extra: true }, /extra|nrecognized/);
      refused('files.apply', apply({ files: [] }));
      refused('files.list', { ...COMMANDS['files.list'], ops: [deleteOp] });
    });

    it('refuses an unknown field in an op', () => {
      refused('files.apply', apply({ ops: [{ ...writeOp, mode: 420 }] }));
      refused('files.apply', apply({ ops: [{ ...deleteOp, recursive: true }] }));
      refused('files.apply', apply({ ops: [deleteOp, { ...deleteOp, content: '' }] }));
      // A delete op carrying a write's fields is neither.
      refused('files.apply', apply({ ops: [{ ...writeOp, op: 'delete' }] }));
    });

    it('refuses an unknown field in a file reference', () => {
      refused('files.read', { ...COMMANDS['files.read'], files: [{ type: 'NvRam', path: '/x/y', offset: 0 }] });
    });

    it('refuses a "__proto__" field', () => {
      const text = JSON.stringify(COMMANDS['files.list']).replace('{', '{"__proto__":{"kind":"files.apply"},');
      refused('files.list', Buffer.from(text));
      const op = JSON.stringify(apply({ ops: [deleteOp] })).replace('{"op"', '{"__proto__":{},"op"');
      refused('files.apply', Buffer.from(op));
    });
  });

  describe('duplicate keys', () => {
    it('refuses a duplicate kind, which JSON.parse would resolve to the last one', () => {
      const text = JSON.stringify(COMMANDS['files.read']).replace('{', '{"kind":"files.apply",');
      assert.equal((JSON.parse(text) as { kind: string }).kind, 'files.read');
      refused('files.read', Buffer.from(text), /duplicate key/);
      refused('files.apply', Buffer.from(text), /duplicate key/);
    });

    it('refuses a duplicate key inside an op', () => {
      const text = JSON.stringify(apply({ ops: [deleteOp] })).replace('"path":', '"path":"/etc/passwd","path":');
      refused('files.apply', Buffer.from(text), /duplicate key/);
    });
  });

  describe('ops and files counts', () => {
    it('refuses 0 ops and 1001 ops', () => {
      refused('files.apply', apply({ ops: [] }));
      refused('files.apply', apply({ ops: Array.from({ length: 1001 }, () => deleteOp) }));
      refused('files.apply', apply({ ops: deleteOp }));
    });

    it('refuses 0 files and 1001 files', () => {
      refused('files.read', { ...COMMANDS['files.read'], files: [] });
      refused('files.read', {
        ...COMMANDS['files.read'],
        files: Array.from({ length: 1001 }, () => ({ type: 'NvRam', path: '/x' })),
      });
    });

    it('refuses no types, an unknown type, and a type twice', () => {
      refused('files.list', { ...COMMANDS['files.list'], types: [] });
      refused('files.list', { ...COMMANDS['files.list'], types: ['Disk'] });
      refused('files.list', { ...COMMANDS['files.list'], types: ['NvRam', 'NvRam'] }, /each type once/);
      refused('files.list', { ...COMMANDS['files.list'], types: ['tpmstate'] });
    });
  });

  describe('op fields', () => {
    it('refuses an unknown op or file type', () => {
      refused('files.apply', apply({ ops: [{ ...deleteOp, op: 'rename' }] }));
      refused('files.apply', apply({ ops: [{ ...deleteOp, type: 'Disk' }] }));
      refused('files.read', { ...COMMANDS['files.read'], files: [{ type: 'nvram', path: '/x' }] });
    });

    it('refuses a bad expectation, an unknown encoding, and a writeDir without entries or with 1001', () => {
      for (const expect of ['present', 'ABSENT', sha256(content).toUpperCase(), '', null]) {
        refused('files.apply', apply({ ops: [{ ...deleteOp, expect }] }));
        refused('files.apply', apply({ ops: [{ ...writeOp, expect }] }));
      }
      refused('files.apply', apply({ ops: [{ ...writeOp, encoding: 'zstd' }] }));
      refused('files.apply', apply({ ops: [{ ...writeDirOp, entries: [] }] }));
      const entry = writeDirOp.entries[0];
      refused('files.apply', apply({ ops: [{ ...writeDirOp, entries: Array.from({ length: 1001 }, () => entry) }] }));
      refused('files.apply', apply({ ops: [{ ...writeDirOp, entries: [{ ...entry, mode: 384 }] }] }));
      refused('files.apply', apply({ ops: [{ ...writeDirOp, content: '' }] }));
    });

    it('refuses missing op fields', () => {
      for (const field of ['op', 'type', 'path', 'content', 'sha256']) {
        refused('files.apply', apply({ ops: [without(writeOp, field)] }));
      }
    });

    it('refuses content that is not standard padded base64', () => {
      for (const bad of [content.toString('base64url'), content.toString('base64').replace(/=+$/, ''), 'a b=', 42]) {
        if (bad === content.toString('base64')) continue;
        refused('files.apply', apply({ ops: [{ ...writeOp, content: bad }] }));
      }
    });

    it('refuses a sha256 that is not 64 lowercase hex digits', () => {
      const hex = sha256(content);
      for (const bad of [hex.toUpperCase(), hex.slice(1), `${hex}0`, hex.replace(/^./, 'g'), '']) {
        if (bad === hex) continue;
        refused('files.apply', apply({ ops: [{ ...writeOp, sha256: bad }] }));
      }
    });

    it('refuses an empty, over-long or non-string path', () => {
      refused('files.apply', apply({ ops: [{ ...deleteOp, path: '' }] }));
      refused('files.apply', apply({ ops: [{ ...deleteOp, path: `/${'a'.repeat(MAX_PATH_LENGTH)}` }] }));
      refused('files.apply', apply({ ops: [{ ...deleteOp, path: ['/x'] }] }));
    });
  });

  describe('times', () => {
    it('refuses times that are not non-negative safe integers', () => {
      const bad: readonly unknown[] = [1764000000000.5, 0.1, -1, '1764000000000', null, true, 2 ** 53, 1e300];
      for (const field of ['issuedAt', 'expiresAt']) {
        for (const value of bad) refused('files.apply', apply({ [field]: value }));
      }
    });

    it('refuses missing times', () => {
      refused('files.apply', without(COMMANDS['files.apply'], 'issuedAt'));
      refused('files.apply', without(COMMANDS['files.apply'], 'expiresAt'));
    });
  });

  describe('ids', () => {
    it('refuses a requestId that is not a version-4 uuid', () => {
      const bad = [
        'f47ac10b-58cc-1372-a567-0e02b2c3d479', // version 1
        '017f22e2-79b0-7cc3-98c4-dc0c0c07398f', // version 7
        '0f8fad5b-d9cb-469f-c165-70867728950e', // wrong variant
        '0f8fad5b-d9cb-469f-a165-70867728950', // short
        '0f8fad5bd9cb469fa16570867728950e', // no dashes
        '{0f8fad5b-d9cb-469f-a165-70867728950e}',
        '00000000-0000-0000-0000-000000000000',
        '',
        42,
      ];
      for (const requestId of bad) refused('files.apply', apply({ requestId }));
    });

    it('refuses a hostUuid that is not a uuid', () => {
      for (const hostUuid of ['host-1', '', '6f1c2a9e3b4d4e5f8a7b1c2d3e4f5a6b', 7])
        refused('files.apply', apply({ hostUuid }));
    });
  });

  describe('bytes', () => {
    const template = JSON.stringify(apply({ ops: [{ ...deleteOp, path: '/var/lib/nvram/@@' }] }));
    const withBytes = (inner: readonly number[]) => {
      const [before, after] = template.split('@@');
      return Buffer.concat([Buffer.from(before ?? ''), Buffer.from(inner), Buffer.from(after ?? '')]);
    };

    it('accepts valid UTF-8 in a string', () => {
      const result = parseCommand(withBytes([0xc3, 0xa9, 0xf0, 0x9f, 0x98, 0x80]), 'files.apply');
      assert.ok(result.ok);
      assert.equal(result.value.ops[0]?.path, '/var/lib/nvram/é😀');
    });

    const invalid: readonly (readonly [string, readonly number[]])[] = [
      ['a stray continuation byte', [0x80]],
      ['0xff', [0xff]],
      ['an overlong encoding of "/"', [0xc0, 0xaf]],
      ['an overlong three-byte encoding', [0xe0, 0x80, 0xaf]],
      ['an encoded surrogate', [0xed, 0xa0, 0x80]],
      ['a truncated sequence', [0xe2, 0x82]],
      ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
    ];
    for (const [what, inner] of invalid) {
      it(`refuses invalid UTF-8: ${what}`, () => {
        refused('files.apply', withBytes(inner), /not UTF-8/);
      });
    }

    it('refuses a truncated multi-byte sequence at the very end', () => {
      refused('files.apply', Buffer.concat([bytesOf(COMMANDS['files.apply']), Buffer.from([0xe2])]), /not UTF-8/);
    });

    it('refuses a byte-order mark, which JSON.parse would refuse too', () => {
      const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytesOf(COMMANDS['files.apply'])]);
      refused('files.apply', bytes, /not JSON/);
    });

    it('refuses payloads that are not JSON objects', () => {
      for (const text of ['', 'null', '[]', '"files.apply"', `${JSON.stringify(COMMANDS['files.apply'])}{}`]) {
        refused('files.apply', Buffer.from(text));
      }
    });
  });
});

describe('parseAnswer', () => {
  const answers = {
    'files.apply': {
      requestId: REQUEST,
      hostUuid: HOST,
      kind: 'files.apply',
      results: [
        { op: 'write', type: 'TpmState', path: writeOp.path, status: 'written' },
        {
          op: 'writeDir',
          type: 'TpmState',
          path: writeDirOp.path,
          status: 'failed',
          error: { code: 'busy', message: '' },
        },
        { op: 'delete', type: 'NvRam', path: deleteOp.path, status: 'absent' },
        { op: 'delete', type: 'NvRam', path: '/x/y', status: 'failed', error: { code: 'symlink', message: 'a link' } },
      ],
    },
    'files.read': {
      requestId: REQUEST,
      hostUuid: HOST,
      kind: 'files.read',
      results: [
        {
          op: 'read',
          type: 'NvRam',
          path: writeOp.path,
          status: 'read',
          kind: 'file',
          content: writeOp.content,
          sha256: writeOp.sha256,
          size: content.length,
        },
        {
          op: 'read',
          type: 'TpmState',
          path: writeDirOp.path,
          status: 'read',
          kind: 'dir',
          sha256: '1'.repeat(64),
          size: 4096,
          entries: [{ ...writeDirOp.entries[0], encoding: 'gzip', size: 4096 }],
        },
        { op: 'read', type: 'NvRam', path: '/x/y', status: 'failed', error: { code: 'not_found', message: 'absent' } },
      ],
    },
    'files.list': {
      requestId: REQUEST,
      hostUuid: HOST,
      kind: 'files.list',
      roots: { TpmState: '/var/lib/swtpm', NvRam: '/var/lib/nvram' },
      results: [
        {
          type: 'NvRam',
          path: '/var/lib/nvram/vm_VARS.fd',
          kind: 'file',
          size: 15,
          sha256: writeOp.sha256,
          mtime: 1764000000000,
          files: 1,
          busy: false,
        },
        {
          type: 'TpmState',
          path: writeDirOp.path,
          kind: 'dir',
          size: 4096,
          sha256: '2'.repeat(64),
          mtime: 1764000000000,
          files: 1,
          busy: true,
        },
      ],
    },
    'files.stat': {
      requestId: REQUEST,
      hostUuid: HOST,
      kind: 'files.stat',
      roots: { TpmState: '/var/lib/swtpm', NvRam: '/var/lib/nvram' },
      results: [
        {
          type: 'TpmState',
          path: writeDirOp.path,
          status: 'present',
          kind: 'dir',
          size: 4096,
          sha256: '2'.repeat(64),
          mtime: 1764000000000,
          files: 1,
          busy: false,
        },
        { type: 'NvRam', path: '/x/y', status: 'absent' },
        { type: 'NvRam', path: '/x/z', status: 'failed', error: { code: 'symlink', message: 'a link' } },
      ],
    },
  } as const;

  for (const kind of KINDS) {
    it(`accepts a ${kind} answer`, () => {
      const result = parseAnswer(bytesOf(answers[kind]), kind);
      if (!result.ok) assert.fail(result.error.message);
      assert.deepStrictEqual(result.value, answers[kind]);
      assert.deepStrictEqual(parseAnswer(bytesOf({ ...answers[kind], results: [] }), kind).ok, true);
    });

    it(`refuses a ${kind} answer with an unknown field, a duplicate key, or for another kind`, () => {
      const expectRefused = (bytes: Uint8Array, as: CommandKind) => {
        const result = parseAnswer(bytes, as);
        if (result.ok) assert.fail('expected bad_request');
        assert.equal(result.error.code, 'bad_request');
      };
      expectRefused(bytesOf({ ...answers[kind], extra: 1 }), kind);
      expectRefused(bytesOf({ ...answers[kind], results: [{ ...answers[kind].results[0], extra: 1 }] }), kind);
      expectRefused(Buffer.from(JSON.stringify(answers[kind]).replace('{', `{"hostUuid":"${HOST}",`)), kind);
      for (const other of KINDS) if (other !== kind) expectRefused(bytesOf(answers[kind]), other);
    });
  }

  it('refuses unknown statuses and error codes', () => {
    const base = answers['files.apply'];
    const result = (fields: Record<string, unknown>) =>
      parseAnswer(bytesOf({ ...base, results: [{ ...base.results[0], ...fields }] }), 'files.apply');
    assert.equal(result({ status: 'read' }).ok, false);
    assert.equal(result({ status: 'done' }).ok, false);
    assert.equal(result({ status: 'failed', error: { code: 'eperm', message: '' } }).ok, false);
    assert.equal(result({ status: 'failed', error: { code: 'io_error', message: 'disk' } }).ok, true);
  });

  it('refuses a listing or stat without its roots, and a read or unit without its kind', () => {
    for (const kind of ['files.list', 'files.stat'] as const) {
      assert.equal(parseAnswer(bytesOf(without(answers[kind], 'roots')), kind).ok, false, kind);
      const extraRoot = { ...answers[kind], roots: { ...answers[kind].roots, Disk: '/x' } };
      assert.equal(parseAnswer(bytesOf(extraRoot), kind).ok, false, kind);
    }
    const read = answers['files.read'];
    const file = without(read.results[0], 'kind');
    assert.equal(parseAnswer(bytesOf({ ...read, results: [file] }), 'files.read').ok, false);
    const unit = { ...answers['files.list'].results[0], kind: 'link' };
    assert.equal(parseAnswer(bytesOf({ ...answers['files.list'], results: [unit] }), 'files.list').ok, false);
  });
});

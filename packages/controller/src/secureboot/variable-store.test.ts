import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AUDIT_STATES, auditVariableStore } from './audit.js';
import { GLOBAL_VARIABLE_GUID, IMAGE_SECURITY_DATABASE_GUID } from './guid.js';
import { fuzzStore } from './fuzz.js';
import { parseVariableStore } from './variable-store.js';
import { buildVariableStore, certificateDer, fixChecksum, x509List, type TestVariable } from './test-support.js';

const VARIABLES: TestVariable[] = [
  { name: 'Boot0000', vendor: GLOBAL_VARIABLE_GUID, data: Buffer.from('a boot option') },
  { name: 'PK', vendor: GLOBAL_VARIABLE_GUID, data: x509List(certificateDer('pk')) },
  { name: 'KEK', vendor: GLOBAL_VARIABLE_GUID, data: x509List(certificateDer('kek2011')) },
  { name: 'db', vendor: IMAGE_SECURITY_DATABASE_GUID, data: x509List(certificateDer('pca2011')) },
];

test('variables: names, vendors, attributes and data, in store order, aligned to 4 bytes', () => {
  const parsed = parseVariableStore(buildVariableStore(VARIABLES));
  assert.ok(parsed.ok, parsed.ok ? '' : parsed.error);
  assert.equal(parsed.value.authenticated, true);
  assert.deepEqual(
    parsed.value.variables.map((v) => [
      v.name,
      v.vendor,
      v.attributes,
      Buffer.from(v.data).equals(VARIABLES.find((t) => t.name === v.name)?.data ?? Buffer.alloc(1)),
    ]),
    VARIABLES.map((v) => [v.name, v.vendor, 0x27, true]),
  );
});

test('a 64 MiB AAVMF-sized file is read in place: every variable is a view into the given bytes', () => {
  const file = Buffer.alloc(64 * 1024 * 1024);
  buildVariableStore(VARIABLES, { volumeBytes: 0xc0000 }).copy(file);
  const parsed = parseVariableStore(file);
  assert.ok(parsed.ok, parsed.ok ? '' : parsed.error);
  assert.equal(parsed.value.variables.length, VARIABLES.length);
  for (const variable of parsed.value.variables) assert.equal(variable.data.buffer, file.buffer, variable.name);
  assert.equal(auditVariableStore(file, Date.UTC(2026, 11, 2)).state, 'update_available');
});

test('headers are checked: signature, GUIDs, lengths, checksum, store state', () => {
  const good = buildVariableStore(VARIABLES);
  const cases: [string, (b: Buffer) => void, RegExp][] = [
    ['file system GUID', (b) => b.writeUInt8(0, 16), /not an NVRAM firmware volume/],
    ['_FVH', (b) => b.write('_FVX', 40, 'latin1'), /no _FVH signature/],
    [
      'volume longer than the file',
      (b) => b.writeBigUInt64LE(BigInt(b.length + 1), 32),
      /claims \d+ bytes, the file has/,
    ],
    ['checksum', (b) => b.writeUInt16LE(b.readUInt16LE(50) ^ 1, 50), /checksum/],
    ['store GUID', (b) => b.writeUInt8(0, 72), /unknown variable store/],
    ['store size', (b) => b.writeUInt32LE(b.length, 72 + 16), /the variable store claims/],
    ['store not healthy', (b) => b.writeUInt8(0xff, 72 + 21), /not formatted and healthy/],
  ];
  for (const [what, corrupt, reason] of cases) {
    const bytes = Buffer.from(good);
    corrupt(bytes);
    if (what !== 'checksum' && bytes.readUInt16LE(48) === 72) fixChecksum(bytes);
    const parsed = parseVariableStore(bytes);
    assert.ok(!parsed.ok, what);
    assert.match(parsed.error, reason, what);
  }
});

test('a variable running past the store, or with a bad name, is refused with its offset', () => {
  const bytes = buildVariableStore(VARIABLES);
  const first = 100; // the first header: HEADER_ALIGN(72 + 28)
  const dataSizeAt = first + 60 - 24 + 4;
  const past = Buffer.from(bytes);
  past.writeUInt32LE(0x40000, dataSizeAt);
  assert.deepEqual(parseVariableStore(past), { ok: false, error: 'the variable at offset 100 runs past the store' });
  const unnamed = Buffer.from(bytes);
  unnamed.writeUInt32LE(3, dataSizeAt - 4); // NameSize odd
  assert.equal(parseVariableStore(unnamed).ok, false);
});

test('fuzz: a store cut at every offset, its variable region ended at every offset, every byte flipped: never a throw', () => {
  const store = buildVariableStore(VARIABLES);
  const report = fuzzStore(store);
  assert.ok(report.cases > 2 * report.used, `${report.cases} cases over ${report.used} bytes in use`);
  // The cut and shortened stores that fail say so; the fuzz saw all four states it can produce here.
  for (const state of report.states) assert.ok((AUDIT_STATES as readonly string[]).includes(state));
  assert.ok(report.states.has('unreadable') && report.states.has('update_available'), [...report.states].join());
});

// For tests: a VARS file cut, shortened and corrupted at every offset it uses; the parser must answer each one with a
// result, never a throw or a read out of range (a RangeError from DataView would be one).
import assert from 'node:assert/strict';
import { auditVariableStore, type AuditState } from './audit.js';
import { parseSignatureLists } from './signature-list.js';
import { fixChecksum } from './test-support.js';
import { parseVariableStore } from './variable-store.js';

/** The audits' clock: only the words of a reason depend on it, never a state. */
const FUZZ_NOW = Date.UTC(2026, 0, 1);

export interface FuzzReport {
  /** how many corrupted stores were parsed */
  readonly cases: number;
  /** the bytes in use: the volume up to the erased space after its store's last variable */
  readonly used: number;
  /** the states the audits answered */
  readonly states: ReadonlySet<AuditState>;
}

/**
 * Every cut of the file up to its bytes in use (each must be unreadable: the volume is longer); the file cut at every
 * offset of its store with the volume and store headers shortened to match (the walk reaches the cut); every byte of the headers flipped, then one in `flipEvery`. Each is
 * parsed down to the signature lists of every variable; one in `auditEvery` also through the whole audit (X.509
 * included), which costs more.
 */
export function fuzzStore(volume: Buffer, { auditEvery = 29, flipEvery = 1 } = {}): FuzzReport {
  const bytes = Buffer.from(volume);
  const storeAt = bytes.readUInt16LE(48);
  const storeSize = bytes.readUInt32LE(storeAt + 16);
  // The variables end where the store's erased space starts (the volume goes on with edk2's fault-tolerant write area).
  let used = storeAt + storeSize;
  while (used > storeAt && bytes[used - 1] === 0xff) used -= 1;
  const states = new Set<AuditState>();
  let cases = 0;
  /** Parses the store, whose variable region ends at `end`: what it answers lies inside that region. */
  const check = (view: Buffer, i: number, end: number): void => {
    cases += 1;
    const parsed = parseVariableStore(view);
    if (parsed.ok) {
      for (const variable of parsed.value.variables) {
        const at = variable.data.byteOffset - view.byteOffset;
        assert.ok(at >= storeAt && at + variable.data.byteLength <= end, `${variable.name} outside the store (${i})`);
        parseSignatureLists(variable.data);
      }
    }
    if (i % auditEvery === 0) states.add(auditVariableStore(view, FUZZ_NOW).state);
  };
  for (let n = 0; n <= used; n++) {
    cases += 1;
    const audit = auditVariableStore(bytes.subarray(0, n), FUZZ_NOW);
    assert.equal(audit.state, 'unreadable', `cut at ${n}`);
    states.add(audit.state);
  }
  // The file cut at `end` with its headers claiming exactly what is left: the walk runs into the cut.
  const volumeLength = bytes.readBigUInt64LE(32);
  for (let end = storeAt; end <= used; end++) {
    bytes.writeUInt32LE(end - storeAt, storeAt + 16);
    bytes.writeBigUInt64LE(BigInt(end), 32);
    fixChecksum(bytes);
    check(bytes.subarray(0, end), end, end);
  }
  bytes.writeUInt32LE(storeSize, storeAt + 16);
  bytes.writeBigUInt64LE(volumeLength, 32);
  fixChecksum(bytes);
  for (let i = 0; i < used; i += i < storeAt + 28 ? 1 : flipEvery) {
    bytes.writeUInt8(bytes.readUInt8(i) ^ 0xff, i);
    check(bytes, i, storeAt + storeSize);
    bytes.writeUInt8(bytes.readUInt8(i) ^ 0xff, i);
  }
  assert.ok(bytes.equals(volume), 'the fuzz put every byte back');
  return { cases, used, states };
}

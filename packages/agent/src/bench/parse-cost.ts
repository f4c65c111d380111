// What a files.apply request costs the agent before its first op, step by step, in-process: the body as text, the
// envelope's pre-parse, the payload's signature check, the command's strict parse and schema, its SHA-256 — for a
// batch of 1 and of 100 writes of 10 KiB (the agent benchmark's), beside the baseline's JSON.parse of the same ops.
// Also the strict base64 check alone against the regular expression it replaced, on one file's content and on the
// 100-write payload. Medians of BENCH_PARSE_ROUNDS rounds (default 9) of a loop each. Not a target: it says where the
// time before the ops goes.
//
//   node packages/agent/dist/bench/parse-cost.js
import { createHash } from 'node:crypto';
import {
  COMMAND_CONTEXT,
  generateSigningKey,
  isStrictBase64,
  parseCommand,
  parseEnvelope,
  trustedKeyFromBase64,
  withVerifiedPayload,
  type Scratch,
} from '@hostfiles/shared';
import { median } from './load.js';
import { agentRequests, baselineRequests, batchesOf, CONTENT } from './workload.js';

const ROUNDS = Number(process.env['BENCH_PARSE_ROUNDS'] ?? 9);
const HOST = '6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b';
/** The expression strict base64 was checked with before isStrictBase64. */
const EXPRESSION = /^[0-9a-zA-Z+/]*={0,2}$/;

/** µs per call of `run`, the median of ROUNDS rounds of `calls` calls. */
function micros(run: () => unknown, calls: number): number {
  for (let i = 0; i < calls; i++) run();
  const rounds = Array.from({ length: ROUNDS }, () => {
    const start = performance.now();
    for (let i = 0; i < calls; i++) run();
    return ((performance.now() - start) * 1000) / calls;
  });
  return median(rounds);
}

const fixed = (value: number): string => value.toFixed(1).padStart(9);

function main(): void {
  const key = generateSigningKey();
  const trusted = trustedKeyFromBase64(key.publicKey).key;
  let scratch = Buffer.alloc(0);
  const take: Scratch = (bytes) => {
    if (scratch.length < bytes) scratch = Buffer.allocUnsafe(bytes);
    return scratch.subarray(0, bytes);
  };
  console.log(
    `a files.apply request's steps before its first op, in-process; µs a call, medians of ${ROUNDS} rounds\n`,
  );
  console.log('batch  body bytes      text  pre-parse   verify  parse+schema  sha-256   baseline JSON.parse');
  /** the last batch's envelope payload, for the base64 check alone below */
  let batchPayload = '';
  for (const batch of [1, 100]) {
    const paths = batchesOf('/var/lib/libvirt/swtpm', 'p', 1, batch);
    const [request] = agentRequests('write', paths, key, HOST);
    const [plain] = baselineRequests('write', paths, key);
    if (request === undefined || plain === undefined) throw new Error('no request made');
    const calls = batch === 1 ? 2000 : 30;
    const text = request.body.toString('latin1');
    const envelope = parseEnvelope(text);
    if (!envelope.ok) throw new Error(envelope.error.message);
    batchPayload = envelope.value.payload;
    const payload = Buffer.from(batchPayload, 'base64');
    const verified = (): unknown =>
      withVerifiedPayload(
        envelope.value,
        COMMAND_CONTEXT,
        () => trusted,
        take,
        () => true,
      );
    if (!parseCommand(payload, 'files.apply').ok) throw new Error('the command does not parse');
    console.log(
      `${String(batch).padStart(5)} ${String(request.body.length).padStart(11)}` +
        fixed(micros(() => request.body.toString('latin1'), calls)) +
        fixed(micros(() => parseEnvelope(text), calls)) +
        fixed(micros(verified, calls)) +
        fixed(micros(() => parseCommand(payload, 'files.apply'), calls)).padStart(14) +
        fixed(micros(() => createHash('sha256').update(payload).digest('hex'), calls)) +
        fixed(micros(() => JSON.parse(plain.body.toString('utf8')) as unknown, calls)).padStart(22),
    );
  }
  console.log('\nstrict base64, the check alone: isStrictBase64 against the expression it replaced');
  for (const [name, value, calls] of [
    ['one 10 KiB file', CONTENT.toString('base64'), 2000],
    ['a 100-write payload', batchPayload, 30],
  ] as const) {
    const fast = micros(() => isStrictBase64(value), calls);
    const expression = micros(() => value.length % 4 === 0 && EXPRESSION.test(value), calls);
    console.log(
      `  ${name.padEnd(20)} ${String(value.length).padStart(9)} chars: ${fast.toFixed(1)} µs against ${expression.toFixed(1)} µs (${(expression / fast).toFixed(1)}×)`,
    );
  }
}

main();

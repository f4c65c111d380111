import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_CLOCK_SKEW_MS } from '@hostfiles/shared';
import { exampleConfig, parseConfig } from './config.js';
import { resolveOwnerships } from './ownership-config.js';
import { lookUpWithGetent, resolvePrincipal, type LookUp } from './principals.js';

const valid = { ...exampleConfig(), trustedKeys: [Buffer.alloc(32, 1).toString('base64')] };

test('a legacy top-level owner or group is refused with what replaced it, beside every other problem', () => {
  const parsed = parseConfig({ ...valid, owner: 'tss', group: 'tss', maxContentBytes: 10 });
  assert.ok(!parsed.ok);
  assert.deepEqual(
    parsed.error.map((line) => line.split(':')[0]),
    ['owner', 'group', 'maxContentBytes'],
  );
  assert.match(parsed.error[0] ?? '', /replaced by ownership\.TpmState\.owner and ownership\.NvRam\.owner/);
});

test('ownership: modes are octal strings, owners names or ids; maxContentBytes 1 KiB..1 GiB', () => {
  const bad = parseConfig({
    ...valid,
    maxContentBytes: 2 ** 30 + 1,
    ownership: { TpmState: { fileMode: '600', owner: 'bad name' }, NvRam: { dirMode: '0800', extra: 1 } },
  });
  assert.ok(!bad.ok);
  for (const what of [
    'maxContentBytes',
    'ownership.TpmState.fileMode',
    'ownership.TpmState.owner',
    'ownership.NvRam.dirMode',
    'ownership.NvRam',
  ]) {
    assert.ok(
      bad.error.some((line) => line.startsWith(`${what}:`)),
      `${what} in ${bad.error.join(' | ')}`,
    );
  }
  const defaults = parseConfig({ ...valid, ownership: undefined, maxContentBytes: undefined });
  assert.ok(defaults.ok);
  assert.deepEqual(defaults.value.ownership, {});
  assert.equal(defaults.value.maxContentBytes, 128 * 1024 * 1024);
});

test('resolveOwnerships: defaults per root, ids through NSS, every unknown name reported', () => {
  const known = new Map([
    ['passwd:tss', 'tss:x:108:115::/:/bin/false'],
    ['group:tss', 'tss:x:115:'],
  ]);
  const lookUp: LookUp = (database, name) => known.get(`${database}:${name}`);
  const resolved = resolveOwnerships(
    { TpmState: { owner: 'tss', group: 'tss' }, NvRam: { owner: 64055, fileMode: '0640' } },
    lookUp,
  );
  assert.deepEqual(resolved, {
    ok: true,
    value: {
      TpmState: { uid: 108, gid: 115, fileMode: 0o600, dirMode: 0o700, topDirMode: 0o711 },
      NvRam: { uid: 64055, fileMode: 0o640, dirMode: 0o700, topDirMode: 0o700 },
    },
  });
  const unknown = resolveOwnerships({ TpmState: { owner: 'swtpm' }, NvRam: { group: 'libvirt-qemu' } }, lookUp);
  assert.deepEqual(unknown, {
    ok: false,
    error: [
      'ownership.TpmState.owner: no user named swtpm on this host',
      'ownership.NvRam.group: no group named libvirt-qemu on this host',
    ],
  });
});

test('resolvePrincipal through the real getent: root is 0, a missing user is said to be missing', () => {
  assert.deepEqual(resolvePrincipal('root', 'passwd', lookUpWithGetent), { ok: true, value: 0 });
  assert.deepEqual(resolvePrincipal(7, 'group', lookUpWithGetent), { ok: true, value: 7 });
  assert.deepEqual(resolvePrincipal('no-such-user-hf', 'passwd', lookUpWithGetent), {
    ok: false,
    error: 'no user named no-such-user-hf on this host',
  });
});

test('listen: TLS with client certificates by default; plain HTTP only on loopback unless allowed', () => {
  const defaults = parseConfig({ ...valid, listen: { host: '0.0.0.0', port: 7441 } });
  assert.ok(defaults.ok);
  assert.deepEqual(defaults.value.listen, {
    host: '0.0.0.0',
    port: 7441,
    tls: true,
    clientAuth: 'required',
    allowPlainHttp: false,
  });
  const plain = parseConfig({ ...valid, listen: { host: '10.0.0.11', port: 7441, tls: false }, maxBodyBytes: 1 });
  assert.ok(!plain.ok);
  assert.deepEqual(
    plain.error.map((line) => line.split(':')[0]),
    ['maxBodyBytes', 'listen.tls'],
    'reported beside every other problem',
  );
  assert.match(plain.error[1] ?? '', /plain HTTP on 10\.0\.0\.11 would carry commands and file contents in clear/);
  for (const host of ['127.0.0.1', '::1', 'localhost']) {
    assert.ok(parseConfig({ ...valid, listen: { host, port: 0, tls: false } }).ok, host);
  }
  assert.ok(parseConfig({ ...valid, listen: { host: '0.0.0.0', port: 0, tls: false, allowPlainHttp: true } }).ok);
  const unknown = parseConfig({ ...valid, listen: { host: '::', port: 0, clientAuth: 'optional' } });
  assert.ok(!unknown.ok);
  assert.match(unknown.error.join('\n'), /^listen\.clientAuth:/m);
});

test('metrics: off unless configured; loopback 127.0.0.1:9464 by default; elsewhere only with allowPlainHttp', () => {
  const off = parseConfig(Object.fromEntries(Object.entries(valid).filter(([key]) => key !== 'metrics')));
  assert.ok(off.ok);
  assert.equal(off.value.metrics, undefined);
  const defaults = parseConfig({ ...valid, metrics: {} });
  assert.ok(defaults.ok);
  assert.deepEqual(defaults.value.metrics, { host: '127.0.0.1', port: 9464, allowPlainHttp: false });
  const open = parseConfig({ ...valid, metrics: { host: '0.0.0.0', port: 9464 } });
  assert.ok(!open.ok);
  assert.match(open.error.join('\n'), /^metrics\.host: metrics on 0\.0\.0\.0 would be open to anyone/m);
  assert.ok(parseConfig({ ...valid, metrics: { host: '10.0.0.11', port: 9464, allowPlainHttp: true } }).ok);
  assert.ok(parseConfig({ ...valid, metrics: { host: '::1', port: 0 } }).ok);
  const unknown = parseConfig({ ...valid, metrics: { port: 9464, path: '/x' } });
  assert.ok(!unknown.ok);
  assert.match(unknown.error.join('\n'), /^metrics:/m);
});

/** Every problem parseConfig finds in `valid` changed so; [] when it is accepted. */
function problemsWith(change: Record<string, unknown>): string[] {
  const parsed = parseConfig({ ...valid, ...change });
  return parsed.ok ? [] : parsed.error;
}

test('roots: neither may be or contain the other; a sibling whose name starts the same is fine', () => {
  for (const roots of [
    { TpmState: '/srv/a', NvRam: '/srv/a' },
    { TpmState: '/srv/a', NvRam: '/srv/a/nvram' },
    { TpmState: '/srv/a/swtpm', NvRam: '/srv/a' },
  ]) {
    assert.deepEqual(
      problemsWith({ roots }),
      ['roots: the two roots must not contain each other'],
      JSON.stringify(roots),
    );
  }
  assert.deepEqual(problemsWith({ roots: { TpmState: '/srv/a', NvRam: '/srv/ab' } }), []);
});

test('stateDir: never a root, inside one or containing one (a signed delete could remove the replay journal)', () => {
  const { TpmState } = valid.roots; // /var/lib/libvirt/swtpm; NvRam is /var/lib/libvirt/qemu/nvram
  const overlapsTpm = ['stateDir: must not overlap the TpmState root'];
  assert.deepEqual(problemsWith({ stateDir: TpmState }), overlapsTpm);
  assert.deepEqual(problemsWith({ stateDir: `${TpmState}/hostfiles` }), overlapsTpm);
  assert.deepEqual(problemsWith({ stateDir: '/var/lib/libvirt' }), [
    ...overlapsTpm,
    'stateDir: must not overlap the NvRam root',
  ]);
  assert.deepEqual(problemsWith({ stateDir: `${TpmState}-agent` }), [], 'a sibling, not inside');
  assert.deepEqual(problemsWith({ keyFile: `${valid.roots.NvRam}/agent.key` }), [
    'keyFile: must not be inside the NvRam root',
  ]);
});

test('hostUuid: lowercase only, as commands carry it (an uppercase one would refuse every command as wrong_host)', () => {
  assert.deepEqual(problemsWith({ hostUuid: valid.hostUuid.toUpperCase() }), [
    'hostUuid: lowercase hex, as commands carry it',
  ]);
  assert.equal(problemsWith({ hostUuid: 'not-a-uuid' })[0]?.split(':')[0], 'hostUuid');
});

test('maxBodyBytes 1 KiB..256 MiB and clockSkewMs 0..600 s (the journal remembers a requestId that much longer), whole numbers', () => {
  // limits left to their defaults, which follow maxBodyBytes (the example's are resolved for 4 MiB).
  const field = (name: string, value: number): string[] =>
    problemsWith({ [name]: value, limits: {} }).map((p) => p.split(':')[0] ?? '');
  for (const value of [1024, 256 * 1024 * 1024]) assert.deepEqual(field('maxBodyBytes', value), [], String(value));
  for (const value of [1023, 256 * 1024 * 1024 + 1, 4096.5, -1]) {
    assert.deepEqual(field('maxBodyBytes', value), ['maxBodyBytes'], String(value));
  }
  for (const value of [0, MAX_CLOCK_SKEW_MS]) assert.deepEqual(field('clockSkewMs', value), [], String(value));
  for (const value of [-1, MAX_CLOCK_SKEW_MS + 1, 1.5]) {
    assert.deepEqual(field('clockSkewMs', value), ['clockSkewMs'], String(value));
  }
  assert.equal(MAX_CLOCK_SKEW_MS, 600_000);
});

test('rules across fields run beside the fields’ own problems, on what parsed; a rule whose field did not parse is skipped', () => {
  // A missing hostUuid and a port that is no number stop zod's own rules across fields: these must still run.
  const problems = problemsWith({
    hostUuid: undefined,
    listen: { host: '10.0.0.11', port: 'seven', tls: false },
    metrics: { host: '0.0.0.0', port: -1 },
    roots: { TpmState: valid.roots.TpmState, NvRam: 'qemu/nvram' },
    // Overlaps both roots as written; NvRam did not parse, so only TpmState's rule can run.
    stateDir: '/var/lib/libvirt',
  });
  assert.deepEqual(
    problems.map((line) => line.split(':')[0]),
    ['hostUuid', 'listen.port', 'roots.NvRam', 'metrics.port', 'metrics.host', 'listen.tls', 'stateDir'],
    problems.join(' | '),
  );
  assert.equal(problems.at(-1), 'stateDir: must not overlap the TpmState root');
  assert.ok(!problems.includes('roots: the two roots must not contain each other'), 'NvRam did not parse');
});

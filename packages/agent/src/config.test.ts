import assert from 'node:assert/strict';
import { test } from 'node:test';
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

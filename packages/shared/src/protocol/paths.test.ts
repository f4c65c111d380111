// Check 9's path rule: absolute, normalized, no NUL, strictly below the root of its type.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { confinePath, confineRelative, isValidRoot, LOCK_NAME, TEMP_PREFIX } from './paths.js';

const ROOT = '/root';
const OTHER_ROOT = '/var/lib/nvram';

function refused(path: string, root: string, message: RegExp): void {
  const result = confinePath(path, root);
  if (result.ok) assert.fail(`expected ${JSON.stringify(path)} to be refused below ${root}`);
  assert.match(result.error, message);
}

describe('confinePath', () => {
  it('accepts a normalized absolute path below the root and returns its components', () => {
    assert.deepStrictEqual(confinePath('/root/a/b', ROOT), { ok: true, value: ['a', 'b'] });
    assert.deepStrictEqual(confinePath('/root/a', ROOT), { ok: true, value: ['a'] });
    assert.deepStrictEqual(confinePath('/var/lib/nvram/vm-1/VARS.fd', OTHER_ROOT), {
      ok: true,
      value: ['vm-1', 'VARS.fd'],
    });
  });

  it('accepts names that merely contain dots', () => {
    assert.deepStrictEqual(confinePath('/root/...', ROOT), { ok: true, value: ['...'] });
    assert.deepStrictEqual(confinePath('/root/..a/.b/c..', ROOT), { ok: true, value: ['..a', '.b', 'c..'] });
  });

  it('refuses `..` segments', () => {
    refused('/root/..', ROOT, /not normalized/);
    refused('/root/a/..', ROOT, /not normalized/);
    refused('/root/a/../b', ROOT, /not normalized/);
    refused('/root/../etc/passwd', ROOT, /not normalized/);
    refused('/root/../root/a', ROOT, /not normalized/);
    refused('/../root/a', ROOT, /not normalized/);
  });

  it('refuses `.` segments', () => {
    refused('/root/.', ROOT, /not normalized/);
    refused('/root/./a', ROOT, /not normalized/);
    refused('/root/a/.', ROOT, /not normalized/);
    refused('/./root/a', ROOT, /not normalized/);
  });

  it('refuses `//`', () => {
    refused('/root//a', ROOT, /not normalized/);
    refused('/root/a//b', ROOT, /not normalized/);
    refused('//root/a', ROOT, /not normalized/);
  });

  it('refuses a trailing `/`', () => {
    refused('/root/a/', ROOT, /not normalized/);
    refused('/root/a/b/', ROOT, /not normalized/);
  });

  it('refuses relative paths', () => {
    refused('root/a', ROOT, /not absolute/);
    refused('a', ROOT, /not absolute/);
    refused('./root/a', ROOT, /not absolute/);
    refused('../root/a', ROOT, /not absolute/);
    refused('', ROOT, /not absolute/);
  });

  it('refuses NUL anywhere', () => {
    refused('/root/a\0b', ROOT, /NUL/);
    refused('/root/a\0', ROOT, /NUL/);
    refused('\0/root/a', ROOT, /NUL/);
  });

  it("refuses the agent's temp names, and allows its quarantines (an operator deletes them by request)", () => {
    refused(`/root/${TEMP_PREFIX}new.vm`, ROOT, /temp/);
    refused(`/root/vm/${TEMP_PREFIX}0123`, ROOT, /temp/);
    const quarantine = '.hostfiles-quarantine.old.vm.1764000000000.0a1b2c3d';
    assert.deepStrictEqual(confinePath(`/root/${quarantine}`, ROOT), { ok: true, value: [quarantine] });
  });

  it('refuses the root itself', () => {
    refused('/root', ROOT, /not below the root/);
    refused('/root/', ROOT, /not normalized/);
  });

  it('refuses a sibling that shares the root as a prefix', () => {
    refused('/rootx/a', ROOT, /not below the root/);
    refused('/rootx', ROOT, /not below the root/);
    refused('/root-backup/a', ROOT, /not below the root/);
  });

  it('refuses paths above or beside the root', () => {
    refused('/', ROOT, /not normalized/);
    refused('/etc/passwd', ROOT, /not below the root/);
    refused('/ro/a', ROOT, /not below the root/);
  });

  it('refuses a path below the other root', () => {
    refused('/var/lib/nvram/vm-1/VARS.fd', ROOT, /not below the root \/root/);
    refused('/root/a', OTHER_ROOT, /not below the root \/var\/lib\/nvram/);
  });

  it('refuses everything when the root is not itself normalized', () => {
    // Fails closed rather than widening the root.
    refused('/root/a', '/root/', /not below the root/);
    refused('/a', '/', /not below the root/);
  });
});

describe('isValidRoot', () => {
  it('accepts absolute normalized roots other than `/`', () => {
    for (const root of ['/root', '/var/lib/swtpm-localca', '/a']) assert.equal(isValidRoot(root), true, root);
  });

  it('refuses `/`, relative, unnormalized and NUL roots', () => {
    for (const root of [
      '/',
      '',
      'root',
      './root',
      '/root/',
      '/root//x',
      '/root/../x',
      '/root/.',
      '//root',
      '/ro\0ot',
    ]) {
      assert.equal(isValidRoot(root), false, JSON.stringify(root));
    }
  });
});

it('a path with a lone surrogate is refused: it would alias another name on disk', () => {
  assert.equal(confinePath('/root/a\ud800b', '/root').ok, false);
  assert.equal(confinePath('/root/\udc00', '/root').ok, false);
  assert.equal(confinePath('/root/\ud83d\ude00', '/root').ok, true, 'a proper pair is fine');
});

describe('confineRelative', () => {
  const refusedRelative = (path: string, message: RegExp): void => {
    const result = confineRelative(path);
    if (result.ok) assert.fail(`expected ${JSON.stringify(path)} to be refused`);
    assert.match(result.error, message);
  };

  it('accepts a normalized relative path and returns its components', () => {
    assert.deepStrictEqual(confineRelative('tpm2/tpm2-00.permall'), { ok: true, value: ['tpm2', 'tpm2-00.permall'] });
    assert.deepStrictEqual(confineRelative('a'), { ok: true, value: ['a'] });
    assert.deepStrictEqual(confineRelative('.lockfile/..x'), { ok: true, value: ['.lockfile', '..x'] });
  });

  it('refuses absolute, empty, `.`, `..`, doubled or trailing slashes, NUL and lone surrogates', () => {
    refusedRelative('/tpm2/x', /relative/);
    for (const path of ['', '.', '..', 'a/../b', 'a/./b', 'a//b', 'a/', './a']) refusedRelative(path, /normalized/);
    refusedRelative('a\0b', /NUL/);
    refusedRelative('a\ud800', /Unicode/);
  });

  it('refuses a line feed or a carriage return anywhere: a state never needs one, and sha256sum escapes them', () => {
    for (const path of ['a\nb', 'tpm2/x\n', '\nx', 'a\rb', 'tpm2/\rx']) refusedRelative(path, /line break/);
    assert.deepStrictEqual(confineRelative('back\\slash'), { ok: true, value: ['back\\slash'] });
  });

  it('refuses temp names and the lock file at any depth', () => {
    refusedRelative(`${TEMP_PREFIX}x`, /temp/);
    refusedRelative(`tpm2/${TEMP_PREFIX}new.x`, /temp/);
    refusedRelative(LOCK_NAME, /swtpm/);
    refusedRelative(`tpm2/${LOCK_NAME}`, /swtpm/);
    refusedRelative(`${LOCK_NAME}/x`, /swtpm/);
  });
});

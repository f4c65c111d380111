import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { describeFileSystem, fileSystemOf } from './file-system.js';

/** Why an ext4 can't be mounted from an image here (not root, no loop device, no mkfs.ext4), or undefined. */
function loopUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root';
  try {
    execFileSync('losetup', ['--find'], { stdio: 'ignore' });
    execFileSync('mkfs.ext4', ['-V'], { stdio: 'ignore' });
  } catch (error) {
    return `no loop device or mkfs.ext4 (${String(error)})`;
  }
  return undefined;
}

/** Runs `check` on a fresh ext4 made with `features` (mkfs -O) and loop-mounted; removes it after. */
function withExt4(features: string, check: (dir: string) => void): void {
  const work = mkdtempSync(join(tmpdir(), 'hostfiles-fs-'));
  const image = join(work, 'fs.img');
  const mount = join(work, 'mnt');
  try {
    execFileSync('truncate', ['-s', '64M', image]);
    execFileSync('mkfs.ext4', ['-q', '-F', '-O', features, image], { stdio: 'ignore' });
    mkdirSync(mount);
    execFileSync('mount', ['-o', 'loop', image, mount]);
    try {
      check(mount);
    } finally {
      execFileSync('umount', [mount]);
      rmdirSync(mount);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

test('an ext4 with a journal and one without are told apart (loop-mounted images)', (t) => {
  const why = loopUnavailable();
  if (why !== undefined) {
    t.skip(`SKIPPED: no ext4 can be mounted here: ${why}`);
    return;
  }
  withExt4('has_journal', (dir) => {
    const fs = fileSystemOf(dir);
    assert.equal(fs.type, 'ext4');
    assert.match(fs.source ?? '', /^\/dev\/loop\d+$/);
    assert.equal(fs.journal, true);
    assert.equal(describeFileSystem(fs), `ext4 on ${fs.source ?? ''}, journaled`);
  });
  withExt4('^has_journal', (dir) => {
    const fs = fileSystemOf(dir);
    assert.equal(fs.type, 'ext4');
    assert.equal(fs.journal, false);
    assert.equal(describeFileSystem(fs), `ext4 on ${fs.source ?? ''}, no journal`);
  });
});

test('a file system other than ext4 is named without a word on journals; a path findmnt cannot place is unknown', () => {
  const shm = fileSystemOf('/dev/shm');
  assert.equal(shm.type, 'tmpfs');
  assert.equal(shm.journal, undefined);
  assert.equal(describeFileSystem(shm), `tmpfs on ${shm.source ?? ''}`);
  const nowhere = fileSystemOf('relative/and/missing');
  assert.deepEqual(nowhere, { type: undefined, source: undefined, journal: undefined });
  assert.equal(describeFileSystem(nowhere), 'a file system findmnt could not name');
});

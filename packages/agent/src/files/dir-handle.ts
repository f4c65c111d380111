// Held directories, opened synchronously; their fsync, close, chmod and chown go through libuv's thread pool.
//
// Why: an op walks and checks a few directories of a state — opens them, lstats entries, lists them — each call a
// few microseconds of kernel time on what the dentry cache holds. Through fs/promises each is also a trip through
// the thread pool (a request object, a futex wake of a worker, an epoll wake back, a promise): ~33 µs of CPU against
// ~10 µs for the same lstat made synchronously (measured here on `/proc/self/fd/N/name`), with the 4 pool threads
// the ones the fsyncs of concurrent ops keep busy. So the store makes its lookups synchronously: open of a directory
// (walk.ts, tree-walk.ts), lstat (target.ts, state-walk.ts, walk.ts), listing (tree-walk.ts) and /proc/locks
// (locks.ts). What changes the file system stays in the pool: rename, link, unlink, mkdir, rmdir, chmod, chown —
// and close, which frees the inode of a directory removed meanwhile. On ext4 each of those joins a journal
// transaction and waits while one commits (the fsyncs of other ops commit them all the time): made synchronously,
// an unlink held the event loop for that wait, and a delete batch ran no faster than through the pool.
//
// The price of the lookups: one the dentry cache cannot answer (a cold directory on a slow disk) holds the event loop
// for its disk read — milliseconds for this host's other requests, never a wrong answer.
import { close, fchmod, fchown, fstatSync, fsync, openSync, type BigIntStats } from 'node:fs';

/** What the store does with a held directory: the subset of FileHandle it uses (a FileHandle fits it too). */
export interface DirHandle {
  readonly fd: number;
  /** fsync(2), in the thread pool: it waits on the disk */
  sync(): Promise<void>;
  /** Closes once; later calls do nothing (a second close(2) could close an fd number reused meanwhile). */
  close(): Promise<void>;
  chmod(mode: number): Promise<void>;
  chown(uid: number, gid: number): Promise<void>;
  stat(options: { bigint: true }): Promise<BigIntStats>;
}

/** Opens `path` (flags must include O_DIRECTORY); throws the open's errno error as fs/promises would. */
export function openDir(path: string, flags: number): DirHandle {
  return new HeldDir(openSync(path, flags));
}

/**
 * A handle on a directory fd its owner holds for the life of the process (a root, see root-dir.ts): no open to make
 * and none to close, where a fresh handle costs an open through /proc and a close in the pool. Its close() only stops
 * this handle's use.
 */
export function borrowDir(fd: number): DirHandle {
  return new BorrowedDir(fd);
}

class HeldDir implements DirHandle {
  #fd: number;

  constructor(fd: number) {
    this.#fd = fd;
  }

  get fd(): number {
    if (this.#fd < 0) throw new Error('a directory handle used after close');
    return this.#fd;
  }

  sync(): Promise<void> {
    const fd = this.fd;
    return pooled((done) => {
      fsync(fd, done);
    });
  }

  /** In the pool: the last close of a directory removed meanwhile frees its inode, which may wait on the journal. */
  close(): Promise<void> {
    if (this.#fd < 0) return Promise.resolve();
    const fd = this.#fd;
    this.#fd = -1;
    return pooled((done) => {
      close(fd, done);
    });
  }

  chmod(mode: number): Promise<void> {
    const fd = this.fd;
    return pooled((done) => {
      fchmod(fd, mode, done);
    });
  }

  chown(uid: number, gid: number): Promise<void> {
    const fd = this.fd;
    return pooled((done) => {
      fchown(fd, uid, gid, done);
    });
  }

  stat(options: { bigint: true }): Promise<BigIntStats> {
    try {
      return Promise.resolve(fstatSync(this.fd, options));
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }
}

class BorrowedDir extends HeldDir {
  #closed = false;

  override get fd(): number {
    if (this.#closed) throw new Error('a directory handle used after close');
    return super.fd;
  }

  override close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}

/** A callback call of node:fs (it runs in the thread pool) as a promise. */
function pooled(call: (done: (error: NodeJS.ErrnoException | null) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    call((error) => {
      if (error === null) resolve();
      else reject(error);
    });
  });
}

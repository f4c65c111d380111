// The log line's form: ISO time, level, event, fields; the `<N>` syslog prefix only when asked, N the level's priority.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger, isJournalStream } from './log.js';

const AT = Date.UTC(2026, 11, 1, 12, 30, 5, 42);

function logged(syslogPrefix: boolean): string[] {
  const lines: string[] = [];
  const logger = createLogger<'a' | 'b' | 'c' | 'd'>({
    write: (line) => lines.push(line),
    now: () => AT,
    fields: { hostUuid: 'h' },
    syslogPrefix,
  });
  logger.info('a', { n: 1 });
  logger.warn('b');
  logger.error('c', { message: 'm' });
  logger.child({ requestId: 'r' }).log('debug', 'd');
  return lines;
}

describe('log lines', () => {
  it('are JSON with an ISO 8601 UTC time, the level, the event, then the fields', () => {
    assert.deepEqual(logged(false), [
      '{"time":"2026-12-01T12:30:05.042Z","level":"info","event":"a","hostUuid":"h","n":1}\n',
      '{"time":"2026-12-01T12:30:05.042Z","level":"warn","event":"b","hostUuid":"h"}\n',
      '{"time":"2026-12-01T12:30:05.042Z","level":"error","event":"c","hostUuid":"h","message":"m"}\n',
      '{"time":"2026-12-01T12:30:05.042Z","level":"debug","event":"d","hostUuid":"h","requestId":"r"}\n',
    ]);
  });

  it('start with the syslog priority journald reads when asked: <6> info, <4> warn, <3> error, <7> debug', () => {
    const lines = logged(true);
    assert.deepEqual(
      lines.map((line) => line.slice(0, 3)),
      ['<6>', '<4>', '<3>', '<7>'],
    );
    assert.deepEqual(
      lines.map((line) => line.slice(3)),
      logged(false),
      'the same JSON after the prefix',
    );
  });
});

describe('isJournalStream', () => {
  const stat = { dev: 25n, ino: 9_007_199_254_740_993n };
  it('holds only where JOURNAL_STREAM names this very stream (device and inode, any size)', () => {
    assert.equal(isJournalStream('25:9007199254740993', stat), true);
    assert.equal(isJournalStream('25:9007199254740992', stat), false, 'another inode');
    assert.equal(isJournalStream('26:9007199254740993', stat), false, 'another device');
  });
  it('is false without the variable, with a malformed one, or without a stream', () => {
    for (const value of [undefined, '', '25', '25:', ':1', '25:9007199254740993x', ' 25:9007199254740993']) {
      assert.equal(isJournalStream(value, stat), false, String(value));
    }
    assert.equal(isJournalStream('25:9007199254740993', undefined), false);
  });
});

// One set of log events: the README's table (event, program, level, fields) names exactly the events each program's
// closed set in code holds, at exactly the levels its logging calls use.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { AGENT_EVENTS } from '@hostfiles/agent';
import { SERVE_EVENTS } from '@hostfiles/controller';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
type Program = 'agent' | 'serve';
/** Whose logger a source tree's calls go to: the controller's logging is serve's (the other commands print). */
const SOURCES: Readonly<Record<Program, string>> = {
  agent: join(ROOT, 'packages/agent/src'),
  serve: join(ROOT, 'packages/controller/src'),
};

/** `event program` → its levels, from the README's table under "## Logs". */
function documented(): Map<string, Set<string>> {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.split(/^## /m).find((part) => part.startsWith('Logs\n'));
  assert.ok(section !== undefined, 'the README has a "## Logs" section');
  const rows = new Map<string, Set<string>>();
  for (const line of section.split('\n')) {
    const cells = /^\| `([a-z_]+)` \| ([a-z, ]+) \| ([a-z, ]+) \|/.exec(line);
    if (cells === null) continue;
    const [, event = '', programs = '', levels = ''] = cells;
    for (const program of programs.split(', ')) {
      const key = `${event} ${program}`;
      assert.equal(rows.has(key), false, `${key}: one row`);
      rows.set(key, new Set(levels.split(', ')));
    }
  }
  return rows;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'bench' ? [] : sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.includes('test') ? [path] : [];
  });
}

/** `event program` → the levels its calls log it at: every `.info('event'`, `.warn(`, `.error(`, `.log('level', '`. */
function logged(): Map<string, Set<string>> {
  const calls = new Map<string, Set<string>>();
  const CALL = /\.(?:(info|warn|error|debug)\(\s*'([a-z_]+)'|log\(\s*'(info|warn|error|debug)',\s*'([a-z_]+)')/g;
  for (const [program, dir] of Object.entries(SOURCES)) {
    for (const file of sourceFiles(dir)) {
      for (const match of readFileSync(file, 'utf8').matchAll(CALL)) {
        const level = match[1] ?? match[3] ?? '';
        const key = `${match[2] ?? match[4] ?? ''} ${program}`;
        calls.set(key, new Set([...(calls.get(key) ?? []), level]));
      }
    }
  }
  return calls;
}

const sorted = (keys: Iterable<string>): string[] => [...keys].sort();

test("the README's table of log events is each program's closed set of events, no more, no less", () => {
  const inCode = [...AGENT_EVENTS.map((e) => `${e} agent`), ...SERVE_EVENTS.map((e) => `${e} serve`)];
  assert.deepEqual(sorted(documented().keys()), sorted(new Set(inCode)));
});

test('every logging call is of an event in its set, at a level the README gives it, and every level is used', () => {
  const table = documented();
  const calls = logged();
  for (const [key, levels] of calls) {
    assert.deepEqual(sorted(levels), sorted(table.get(key) ?? []), `${key}: levels logged vs documented`);
  }
  // An event in a set that no call logs by name (logged through a variable, or dead): the table cannot be checked.
  assert.deepEqual(sorted(table.keys()), sorted(calls.keys()), 'events documented vs events logged by a call');
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cpuSecondsOf, machineTicks, machineTicksOf } from './cpu.js';

test('the cpu line of /proc/stat: idle and I/O wait are free time, steal is busy, guest is inside user', () => {
  // user nice system idle iowait irq softirq steal guest guest_nice
  const text = 'cpu  100 5 40 800 30 3 2 20 50 0\ncpu0 50 2 20 400 15 1 1 10 25 0\nintr 1 2 3\n';
  assert.deepEqual(machineTicksOf(text), {
    busy: 100 + 5 + 40 + 3 + 2 + 20,
    total: 100 + 5 + 40 + 3 + 2 + 20 + 800 + 30,
  });
});

test('a kernel without steal and later fields: they count 0', () => {
  assert.deepEqual(machineTicksOf('cpu 10 0 5 85 0 0 0'), { busy: 15, total: 100 });
});

test('text that is not /proc/stat is refused, not read as zeros', () => {
  assert.throws(() => machineTicksOf('intr 1 2 3\ncpu 1 2 3'), /not the first line of \/proc\/stat/);
  assert.throws(() => machineTicksOf(''), /not the first line/);
});

test("this machine's /proc/stat: ticks only grow, and busy never exceeds all", () => {
  const before = machineTicks();
  // Work the CPU enough for the kernel to account a few ticks to it.
  const cpu = cpuSecondsOf(process.pid);
  let spun = 0;
  while (cpuSecondsOf(process.pid).all - cpu.all < 0.05) spun++;
  const after = machineTicks();
  assert.ok(spun > 0);
  assert.ok(after.busy > before.busy, `busy ticks ${before.busy} → ${after.busy} while this process spun for 50 ms`);
  assert.ok(after.total >= after.busy && after.total > before.total);
});

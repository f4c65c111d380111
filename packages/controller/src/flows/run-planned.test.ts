// A flow whose keys come from the database claims them again when a flow it waited for changed what they cover.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stateKeys, vmKey } from './lock-keys.js';
import { runPlanned } from './run-planned.js';
import { createVmQueue } from './vm-queue.js';

const HOST = '11111111-1111-4111-8111-111111111111';
const VM = '33333333-3333-4333-8333-333333333333';

interface Gate {
  readonly opened: Promise<void>;
  readonly open: () => void;
}

function gate(): Gate {
  let open: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

test('keys planned before the claim and stale once held are let go and claimed anew', async () => {
  // Each run that has to wait opens the next of these, in turn.
  const waits = [gate(), gate()];
  let waited = 0;
  const queue = createVmQueue({
    onWait: () => {
      waits[waited++]?.open();
    },
  });
  const log: string[] = [];
  let path = '/nvram/old_VARS.fd';
  // A write on the VM holds it and moves its state to a new path; another flow holds that new path meanwhile.
  const write = gate();
  const moving = queue.run([vmKey(VM)], async () => {
    await write.opened;
    path = '/nvram/new_VARS.fd';
  });
  const planned = runPlanned(
    { queue },
    () => Promise.resolve({ keys: [vmKey(VM), ...stateKeys(HOST, 'NvRam', path)], value: path }),
    (value) => {
      log.push(`flow on ${value}`);
      return Promise.resolve(value);
    },
  );
  await waits[0]?.opened; // the planned flow waits behind the write, holding the old path's keys
  const other = gate();
  const holding = queue.run(stateKeys(HOST, 'NvRam', '/nvram/new_VARS.fd'), async () => {
    await other.opened;
    log.push('other flow lets go');
  });
  write.open();
  await moving;
  // Without a fresh claim the flow would now run on the new path under the other flow; with one, it waits for it.
  await Promise.race([planned, waits[1]?.opened]);
  other.open();
  assert.equal(await planned, '/nvram/new_VARS.fd');
  await holding;
  assert.deepEqual(log, ['other flow lets go', 'flow on /nvram/new_VARS.fd']);
});

// Hosts, VMs, TPMs with their bindings, and the operations journal, through the single-call methods.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isStoreError } from './errors.js';
import { addHost, addVm, ENGINES, manualClock, onEngine, openStore } from './test-support.js';

const notFound = (error: unknown) => isStoreError(error, 'not_found');

for (const engine of ENGINES)
  describe(`inventory (${engine})`, onEngine(engine), () => {
    it('adds, finds, lists and removes hosts; tracks their state', async (t) => {
      const store = await openStore(t, engine, { now: () => 5 });
      const h2 = await addHost(store, 'h2');
      const h1 = await addHost(store, 'h1');
      assert.deepEqual(await store.getHost(h1), {
        uuid: h1,
        name: 'h1',
        url: 'http://h1:7300',
        publicKey: 'pk',
        keyId: '0011223344556677',
        certificate: null,
        state: 'Connected',
        lastSeenAt: null,
        createdAt: 5,
      });
      assert.equal((await store.getHostByName('h2'))?.uuid, h2);
      assert.equal(await store.getHostByName('h3'), null);
      assert.deepEqual(
        (await store.listHosts()).map((h) => h.name),
        ['h1', 'h2'],
      );
      assert.equal(await store.setHostState(h1, 'Disconnected'), 'Connected');
      assert.equal(await store.setHostState(h1, 'Connected', 77), 'Disconnected');
      assert.deepEqual([(await store.getHost(h1))?.state, (await store.getHost(h1))?.lastSeenAt], ['Connected', 77]);
      await store.setHostState(h1, 'Disconnected');
      assert.equal((await store.getHost(h1))?.lastSeenAt, 77);
      await assert.rejects(store.setHostState('nope', 'Connected'), notFound);
      const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
      await store.setHostEndpoint(h1, 'https://h1:7441', pem);
      assert.deepEqual(
        [(await store.getHost(h1))?.url, (await store.getHost(h1))?.certificate, (await store.getHost(h1))?.publicKey],
        ['https://h1:7441', pem, 'pk'],
      );
      await assert.rejects(store.setHostEndpoint('nope', 'https://x', null), notFound);
      // A re-pinned agent: another key and certificate, the same uuid, name and URL.
      const repinned = '-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n';
      await store.setHostKey(h1, { publicKey: 'pk2', keyId: '8899aabbccddeeff', certificate: repinned });
      const after = await store.getHost(h1);
      assert.deepEqual(
        [after?.publicKey, after?.keyId, after?.certificate, after?.url, after?.name],
        ['pk2', '8899aabbccddeeff', repinned, 'https://h1:7441', 'h1'],
      );
      await assert.rejects(store.setHostKey('nope', { publicKey: 'pk', keyId: 'k', certificate: null }), notFound);
      await store.removeHost(h2);
      await assert.rejects(store.removeHost(h2), notFound);
    });

    it('adds, finds, places and removes VMs', async (t) => {
      const store = await openStore(t, engine);
      const h1 = await addHost(store, 'h1');
      const vm = await addVm(store, 'vm1', null, true);
      await addVm(store, 'vm0', h1);
      assert.deepEqual(
        { ...(await store.getVm(vm)), createdAt: 0 },
        { uuid: vm, name: 'vm1', hostUuid: null, bootMode: 'UEFI', secureBoot: true, epoch: 0, createdAt: 0 },
      );
      // Every move, and every restore, is a new ownership: the epoch rises.
      assert.equal(await store.setVmHost(vm, h1), 1);
      assert.equal(await store.bumpVmEpoch(vm), 2);
      assert.equal(await store.setVmHost(vm, h1), 3, 'even back onto the same host');
      assert.deepEqual([(await store.getVmByName('vm1'))?.hostUuid, (await store.getVm(vm))?.epoch], [h1, 3]);
      await assert.rejects(store.bumpVmEpoch('nope'), notFound);
      assert.deepEqual(
        (await store.listVms({ hostUuid: h1 })).map((v) => v.name),
        ['vm0', 'vm1'],
      );
      await store.setVmHost(vm, null);
      assert.deepEqual(
        (await store.listVms({ hostUuid: h1 })).map((v) => v.name),
        ['vm0'],
      );
      assert.equal((await store.listVms()).length, 2);
      await assert.rejects(store.setVmHost('nope', null), notFound);
      await store.removeVm(vm);
      assert.equal(await store.getVm(vm), null);
    });

    it('adds a TPM with its attached binding; removing the TPM keeps the binding', async (t) => {
      const store = await openStore(t, engine, { now: () => 9 });
      const vm = await addVm(store, 'vm1', null);
      const { tpm, binding } = await store.addTpm({ uuid: 'tpm1', vmUuid: vm, keyProvider: 'kms' });
      assert.deepEqual(tpm, { uuid: 'tpm1', vmUuid: vm, createdAt: 9 });
      assert.deepEqual(await store.getTpmByVm(vm), tpm);
      assert.deepEqual(await store.getKeyBinding('tpm1'), binding);
      assert.equal(binding.state, 'attached');
      await store.removeTpm('tpm1');
      assert.equal(await store.getTpmByVm(vm), null);
      await store.setKeyBindingState('tpm1', 'detaching');
      assert.deepEqual(
        (await store.listKeyBindings({ state: 'detaching' })).map((b) => b.tpmUuid),
        ['tpm1'],
      );
      assert.deepEqual(await store.listKeyBindings({ state: 'attached' }), []);
      await store.deleteKeyBinding('tpm1');
      await assert.rejects(store.deleteKeyBinding('tpm1'), notFound);
      await assert.rejects(store.removeTpm('tpm1'), notFound);
    });

    it('adds the TPM and its binding together or not at all', async (t) => {
      const store = await openStore(t, engine);
      const vm = await addVm(store, 'vm1', null);
      await store.addTpm({ uuid: 'tpm1', vmUuid: vm, keyProvider: 'kms' });
      await store.removeTpm('tpm1'); // its binding stays, so a TPM re-added under the same uuid cannot bind again
      await assert.rejects(store.addTpm({ uuid: 'tpm1', vmUuid: vm, keyProvider: 'kms' }), (e) =>
        isStoreError(e, 'conflict'),
      );
      assert.equal(await store.getTpmByVm(vm), null);
    });
  });

for (const engine of ENGINES)
  describe(`operations (${engine})`, onEngine(engine), () => {
    it('journals a flow: start, steps with reports, finish; lists the unfinished ones', async (t) => {
      const clock = manualClock(1);
      const store = await openStore(t, engine, { now: clock.now });
      const op = await store.startOperation({
        id: 'op1',
        kind: 'tpm.remove',
        subject: 'vm-1',
        step: 'collect',
        input: { vms: ['vm-1'] },
      });
      await store.startOperation({ id: 'op2', kind: 'vm.destroy', subject: 'vm-2', step: 'collect', input: null });
      assert.deepEqual(await store.getOperation('op1'), op);
      clock.set(2);
      await store.setOperationStep('op1', 'dispatch', { hosts: 2 });
      await store.setOperationStep('op1', 'purge');
      assert.deepEqual(await store.getOperation('op1'), { ...op, step: 'purge', report: { hosts: 2 }, updatedAt: 2 });
      await store.finishOperation('op2', 'failed', { error: 'x' });
      assert.deepEqual(
        (await store.listUnfinishedOperations()).map((o) => o.id),
        ['op1'],
      );
      await store.finishOperation('op1', 'done', { removed: 1 });
      assert.deepEqual(await store.listUnfinishedOperations(), []);
      await assert.rejects(store.setOperationStep('op1', 'again'), (e) => isStoreError(e, 'conflict'));
      await assert.rejects(store.finishOperation('nope', 'done', null), notFound);
      await assert.rejects(
        store.startOperation({ id: 'op1', kind: 'vm.sync', subject: 's', step: 'x', input: 1 }),
        (e) => isStoreError(e, 'conflict'),
      );
      await assert.rejects(
        store.startOperation({ id: 'op3', kind: 'vm.sync', subject: 's', step: 'x', input: undefined }),
        (e) => isStoreError(e, 'constraint'),
      );
    });
  });

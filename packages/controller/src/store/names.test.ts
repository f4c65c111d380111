// An operation's subject named from the rows it names only (GET /v1/operations/{id}), as from every row (the list).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  loadNames,
  loadSubjectNames,
  nameOperation,
  OPERATION_KIND,
  type Host,
  type Operation,
  type StoreReads,
  type Vm,
} from './types.js';

const HOSTS = { h1: 'left', h2: 'right' } as const;
const VMS = { v1: 'web' } as const;

/** A store of two hosts and a VM that counts its reads: by uuid, and whole tables. */
function fakeStore(): Pick<StoreReads, 'getHost' | 'getVm' | 'listHosts' | 'listVms'> & { reads: string[] } {
  const reads: string[] = [];
  const host = (uuid: string): Host => ({ uuid, name: HOSTS[uuid as keyof typeof HOSTS] }) as unknown as Host;
  const vm = (uuid: string): Vm => ({ uuid, name: VMS[uuid as keyof typeof VMS] }) as unknown as Vm;
  return {
    reads,
    getHost: (uuid) => {
      reads.push(`host ${uuid}`);
      return Promise.resolve(uuid in HOSTS ? host(uuid) : null);
    },
    getVm: (uuid) => {
      reads.push(`vm ${uuid}`);
      return Promise.resolve(uuid in VMS ? vm(uuid) : null);
    },
    listHosts: () => {
      reads.push('all hosts');
      return Promise.resolve(Object.keys(HOSTS).map(host));
    },
    listVms: () => {
      reads.push('all vms');
      return Promise.resolve(Object.keys(VMS).map(vm));
    },
  };
}

const operation = (kind: string, subject: string): Operation => ({
  id: 'op',
  kind,
  subject,
  step: 'start',
  state: 'done',
  input: null,
  report: null,
  createdAt: 0,
  updatedAt: 0,
});

/** 32 uuids of VMs the store does not have: with v1, one more than are read one by one. */
const manyVms = Array.from({ length: 32 }, (_, i) => `gone-${String(i)}`);

describe('loadSubjectNames', () => {
  it('reads the rows the subject names, one each, and names it as loadNames does', async () => {
    const cases: [Operation, string, string[]][] = [
      [operation(OPERATION_KIND.syncVm, 'v1'), 'web', ['vm v1']],
      // a destroyed VM: its uuid stays
      [operation(OPERATION_KIND.destroyVm, 'v9'), 'v9', ['vm v9']],
      [operation(OPERATION_KIND.reconcileHost, 'h1,h2,h9'), 'left,right,h9', ['host h1', 'host h2', 'host h9']],
      [operation(OPERATION_KIND.syncFleet, 'all'), 'all', []],
      // a kind this release does not know: its subject as it is
      [operation('vm.teleport', 'v1'), 'v1', []],
      // a uuid named twice is read once
      [operation(OPERATION_KIND.removeTpm, 'v1,v1'), 'web,web', ['vm v1']],
      // more than 32: two whole tables, not a read per row
      [
        operation(OPERATION_KIND.removeTpm, ['v1', ...manyVms].join(',')),
        ['web', ...manyVms].join(','),
        ['all hosts', 'all vms'],
      ],
    ];
    for (const [op, named, reads] of cases) {
      const store = fakeStore();
      assert.equal(nameOperation(op, await loadSubjectNames(store, op)).subjectName, named, op.kind);
      assert.deepEqual(store.reads, reads, `${op.kind}: only its subject's rows`);
      assert.equal(nameOperation(op, await loadNames(store)).subjectName, named, `${op.kind}: as the list names it`);
    }
  });
});

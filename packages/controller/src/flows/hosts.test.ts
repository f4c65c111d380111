// A host's connection failure, as recover reads it: one address that refuses is a machine that is up, whatever the
// others said.
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo } from 'node:net';
import { test } from 'node:test';
import { errnosOf } from '../agents/agent-client.js';
import { connectionFailure } from './hosts.js';

test('a connection to a name of two addresses that both refuse fails with each address code, not only the first', async () => {
  // A port nothing listens on, at two loopback addresses a lookup gives for one name (as a dual-stack host's does).
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  const error = await new Promise<unknown>((resolve) => {
    connect({
      host: 'two-addresses.invalid',
      port,
      autoSelectFamily: true,
      lookup: (_host, _options, callback) => {
        callback(null, [
          { address: '127.0.0.1', family: 4 },
          { address: '127.0.0.2', family: 4 },
        ]);
      },
    }).once('error', resolve);
  });
  assert.ok(error instanceof AggregateError, String(error));
  assert.deepEqual(errnosOf(error), ['ECONNREFUSED', 'ECONNREFUSED']);
});

test('lost only when every address is nothing there; any refusal is someone there', () => {
  assert.deepEqual(connectionFailure(['ENETUNREACH', 'ECONNREFUSED']), { refused: true, nothingThere: false });
  assert.deepEqual(connectionFailure(['ECONNREFUSED', 'EHOSTUNREACH']), { refused: true, nothingThere: false });
  assert.deepEqual(connectionFailure(['ENETUNREACH', 'EHOSTUNREACH']), { refused: false, nothingThere: true });
  assert.deepEqual(connectionFailure(['ENOTFOUND']), { refused: false, nothingThere: true });
  assert.deepEqual(connectionFailure(['ECONNRESET']), { refused: false, nothingThere: false });
  assert.deepEqual(connectionFailure(['ENETUNREACH', 'ECONNRESET']), { refused: false, nothingThere: false });
  assert.deepEqual(connectionFailure([]), { refused: false, nothingThere: false });
});

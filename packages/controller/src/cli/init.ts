// `hostfiles init`: the database (migrations applied) and the controller key, and what agents must trust.
import { writeFileSync } from 'node:fs';
import { isPostgresUrl, redactUrl } from '../config.js';
import type { Command } from './command.js';
import { CliError } from './errors.js';
import { columns } from './output.js';

export const INIT_COMMANDS: readonly Command[] = [
  {
    words: ['init'],
    args: [],
    flags: [],
    summary: 'create the database and the controller key; print the public key agents must trust',
    details: [
      'Creates the database, mode 0600 (or brings an existing one to the current schema), and the controller key:',
      'an Ed25519 private key, PKCS#8 PEM, mode 0600. An existing key is never overwritten; it is read',
      'and its public key printed again. Put the public key in every agent config\'s "trustedKeys".',
    ].join('\n'),
    async run(ctx) {
      const { db, key: keyFile } = ctx.paths;
      // A PostgreSQL database is the server's to create; its schema and tables are made here.
      const databaseCreated = isPostgresUrl(db) ? false : createPrivateFile(db);
      const [{ openStore }, { ensureControllerKey }] = await Promise.all([
        import('./context.js'),
        import('./key-file.js'),
      ]);
      const store = await openStore(db);
      await store.close();
      const { key, created: keyCreated } = ensureControllerKey(keyFile);
      const result = {
        database: redactUrl(db),
        databaseCreated,
        keyFile,
        keyCreated,
        publicKey: key.publicKey,
        keyId: key.keyId,
      };
      ctx.print(result, () =>
        [
          columns([
            [
              'database',
              `${redactUrl(db)} (${databaseCreated ? 'created' : isPostgresUrl(db) ? 'schema up to date' : 'exists, schema up to date'})`,
            ],
            ['key', `${keyFile} (${keyCreated ? 'created, mode 0600' : 'exists, kept'})`],
            ['keyId', key.keyId],
            ['publicKey', key.publicKey],
          ]),
          '',
          'Trust this controller on every agent: in its config,',
          `  "trustedKeys": ["${key.publicKey}"]`,
        ].join('\n'),
      );
    },
  },
];

/**
 * Creates an empty file, mode 0600, unless one exists; answers whether it did. The database holds backups of TPM
 * state and NVRAM, so it is the owner's only; SQLite gives its -wal and -shm files the database file's mode.
 */
function createPrivateFile(path: string): boolean {
  try {
    writeFileSync(path, '', { mode: 0o600, flag: 'wx' });
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    throw new CliError(`cannot create the database ${path}: ${code ?? String(error)}`);
  }
}

// `hostfiles init`: the database (migrations applied) and the controller key, and what agents must trust.
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
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
      const [{ checkDatabase, openStore }, { ensureControllerKey }] = await Promise.all([
        import('./context.js'),
        import('./key-file.js'),
      ]);
      checkDatabase(db);
      // The key first: one refused (readable by others, not a key) leaves no new database behind.
      const { key, created: keyCreated } = ensureControllerKey(keyFile);
      // A PostgreSQL database is the server's to create; its schema and tables are made here.
      const databaseCreated = isPostgresUrl(db) ? false : createPrivateFile(db);
      let schema = { from: 0, to: 0 };
      const store = await openStore(db, {
        onSchema: (change) => {
          schema = change;
        },
      });
      await store.close();
      const shared = isPostgresUrl(db);
      const result = {
        database: redactUrl(db),
        databaseCreated,
        schemaVersion: schema.to,
        schemaVersionBefore: schema.from,
        keyFile: resolve(keyFile),
        keyCreated,
        publicKey: key.publicKey,
        keyId: key.keyId,
      };
      ctx.print(result, () =>
        [
          columns([
            ['database', `${redactUrl(db)} (${databaseDone(databaseCreated, shared, schema)})`],
            ['key', `${result.keyFile} (${keyCreated ? 'created, mode 0600' : 'exists, kept'})`],
            ['keyId', key.keyId],
            ['publicKey', key.publicKey],
          ]),
          '',
          'Trust this controller on every agent: in its config,',
          `  "trustedKeys": ["${key.publicKey}"]`,
          // Several controllers share a PostgreSQL database, and agents trust the key: each must sign with this one.
          ...(shared
            ? ['', `Every controller on this database signs with this key: copy ${result.keyFile} (mode 0600) to each.`]
            : []),
        ].join('\n'),
      );
    },
  },
];

/** What init did to the database: made it, brought its schema up from an older version, or found it current. */
function databaseDone(fileCreated: boolean, shared: boolean, schema: { from: number; to: number }): string {
  // In PostgreSQL the schema may have been there (public is): what init made is the tables.
  const what = shared ? 'tables' : 'database';
  if (fileCreated || schema.from === 0) return `${what} created, version ${schema.to}`;
  const found = shared ? '' : 'exists, ';
  if (schema.from < schema.to) return `${found}schema brought from version ${schema.from} to ${schema.to}`;
  return `${found}schema up to date, version ${schema.to}`;
}

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

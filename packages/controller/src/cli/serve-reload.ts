// SIGHUP for `hostfiles serve`: the bearer token and the TLS certificate and key read again from their files. The
// rest (listen address, database, key, lease, health interval, metrics) is fixed by the command line: restart to change
// it. A file that no longer reads or checks changes nothing: the one in use is kept, and why is logged.
import type { Server as HttpsServer } from 'node:https';
import type { Logger, TlsIdentity } from '@hostfiles/shared';
import { loadTls, loadToken } from './serve-files.js';
import type { ServeEvent } from './serve-log.js';

export interface ReloadFiles {
  readonly tokenFile: string;
  readonly tlsCert?: string | undefined;
  readonly tlsKey?: string | undefined;
}

export interface Reloader {
  /** the token in use: the API reads it per request */
  readonly token: () => string;
  /** the HTTPS server whose certificate a reload replaces; until set, a reload only rereads the token */
  attach(server: HttpsServer | undefined): void;
  /** reads the files again; never throws */
  reload(): void;
}

export function createReloader(files: ReloadFiles, token: string, logger: Logger<ServeEvent>): Reloader {
  let current = token;
  let server: HttpsServer | undefined;
  return {
    token: () => current,
    attach(attached) {
      server = attached;
    },
    reload() {
      let next: string;
      let tls: TlsIdentity | undefined;
      try {
        // Both read and checked before either is used: a reload applies whole or not at all.
        next = loadToken(files.tokenFile);
        tls = loadTls(files.tlsCert, files.tlsKey);
      } catch (error) {
        logger.error('reload_failed', {
          kept: 'the token and certificate in use',
          reason: error instanceof Error ? error.message : String(error),
        });
        return;
      }
      const tokenChanged = next !== current;
      current = next;
      if (tls !== undefined) server?.setSecureContext({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' });
      logger.info('reloaded', {
        tokenChanged,
        tls: tls !== undefined && server !== undefined,
        needsRestart: 'any other option (the command line is read once)',
      });
    },
  };
}

// Which addresses never leave the machine: plain HTTP is allowed there without being asked for.
import { isIPv4 } from 'node:net';

/** localhost, 127.0.0.0/8 (also as ::ffff:127.…) and ::1, as a host name or a URL's hostname (`[::1]`). */
export function isLoopbackHost(host: string): boolean {
  const bare = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (bare === 'localhost' || bare === '::1' || bare === '0:0:0:0:0:0:0:1') return true;
  const v4 = bare.startsWith('::ffff:') ? bare.slice('::ffff:'.length) : bare;
  return isIPv4(v4) && v4.startsWith('127.');
}

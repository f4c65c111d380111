// Which addresses never leave the machine: plain HTTP is allowed there without being asked for.
import { BlockList, isIP } from 'node:net';

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/**
 * localhost, 127.0.0.0/8 and ::1, as a host name or a URL's hostname (`[::1]`); IPv4-mapped forms too, as a URL
 * writes them (`[::ffff:7f00:1]`).
 */
export function isLoopbackHost(host: string): boolean {
  const bare = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (bare === 'localhost') return true;
  const family = isIP(bare);
  return family !== 0 && LOOPBACK.check(bare, family === 4 ? 'ipv4' : 'ipv6');
}

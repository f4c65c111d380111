// `host add`'s, `host repin`'s and `host set-url`'s words on trust: which key to pin, and what was pinned.
import { keyFingerprint, parseExpectedKey } from '@hostfiles/shared';
import type { Host } from '../store/index.js';
import { UsageError } from './errors.js';

export const pinned = (host: Host): string =>
  `agent key ${keyFingerprint(host.publicKey)} pinned` +
  (host.certificate !== null ? ', with its TLS certificate' : ', over plain HTTP (no TLS)');

/** Which key to pin is the operator's to say: an expected key, or trust on first use asked for by name. */
export function checkTrust(command: string, expectKey: string | undefined, trustOnFirstUse: boolean): void {
  const hint = `see \`hostfiles ${command} --help\``;
  if (expectKey !== undefined && trustOnFirstUse) {
    throw new UsageError('--expect-key and --trust-on-first-use exclude each other', hint);
  }
  if (expectKey === undefined && !trustOnFirstUse) {
    throw new UsageError(
      `${command} needs --expect-key KEY (the agent's public key or sha256:… fingerprint: run \`hostfiles-agent info ` +
        '--config FILE` on the host), or --trust-on-first-use to pin whatever key answers',
      hint,
    );
  }
  if (expectKey !== undefined) {
    const parsed = parseExpectedKey(expectKey);
    if (!parsed.ok) throw new UsageError(`--expect-key: ${parsed.error}`, hint);
  }
}

export function warnFirstUse(stderr: (text: string) => void, host: Host): void {
  const fingerprint = keyFingerprint(host.publicKey);
  stderr(
    [
      `hostfiles: WARNING: host ${host.name}: its agent's key was trusted on first use, checked against nothing.`,
      `hostfiles: WARNING: pinned ${fingerprint}`,
      `hostfiles: WARNING: on ${host.name}, \`hostfiles-agent info --config FILE\` must print this fingerprint; if it`,
      `hostfiles: WARNING: does not, something else answered for the agent: \`hostfiles host remove ${host.name}\` now.`,
    ].join('\n') + '\n',
  );
}

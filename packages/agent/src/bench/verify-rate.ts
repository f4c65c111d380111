// Signature verifications per second in-process: node:crypto beside tweetnacl over the same bytes.
import { randomUUID } from 'node:crypto';
import nacl from 'tweetnacl';
import {
  buildCommand,
  COMMAND_CONTEXT,
  deleteOp,
  parseEnvelope,
  signedBytes,
  signEnvelope,
  trustedKeyFromBase64,
  verifyEnvelope,
  type GeneratedKey,
} from '@hostfiles/shared';

export interface VerifyRates {
  readonly nodePerSec: number;
  readonly naclPerSec: number;
}

export function measureVerify(key: GeneratedKey): VerifyRates {
  const command = buildCommand(
    'files.apply',
    randomUUID(),
    { ops: [deleteOp('TpmState', '/var/lib/swtpm/vm/tpm2-00.permall')] },
    { now: Date.now() },
  );
  const text = JSON.stringify(signEnvelope(COMMAND_CONTEXT, command, key));
  const envelope = parseEnvelope(text);
  if (!envelope.ok) throw new Error(envelope.error.message);
  const trusted = trustedKeyFromBase64(key.publicKey);
  const lookup = (): typeof trusted.key => trusted.key;
  const rate = (count: number, fn: () => boolean): number => {
    const start = performance.now();
    for (let i = 0; i < count; i++) if (!fn()) throw new Error('verification failed');
    return count / ((performance.now() - start) / 1000);
  };
  const nodePerSec = rate(20_000, () => verifyEnvelope(envelope.value, COMMAND_CONTEXT, lookup).ok);
  const message = signedBytes(COMMAND_CONTEXT, Buffer.from(envelope.value.payload, 'base64'));
  const signature = Buffer.from(envelope.value.signature, 'base64');
  const publicKey = Buffer.from(key.publicKey, 'base64');
  const naclPerSec = rate(30, () => nacl.sign.detached.verify(message, signature, publicKey));
  return { nodePerSec, naclPerSec };
}

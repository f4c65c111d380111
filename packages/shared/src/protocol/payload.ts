// Parsing verified payload bytes into commands and answers.
import type { z } from 'zod';
import { protocolError, type ProtocolError } from '../errors.js';
import { err, ok, type Result } from '../result.js';
import { summarize } from '../util/echo.js';
import { parseStrictJson } from './strict-json.js';
import { ANSWER_SCHEMAS, commandSchema, type AnswerFor, type Command, type CommandKind } from './schemas.js';

// ignoreBOM keeps a byte-order mark in the text, where strict JSON refuses it (as JSON.parse does) instead of
// the decoder silently dropping it.
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function parseWith<T>(bytes: Uint8Array, schema: z.ZodType<T>, what: string): Result<T, ProtocolError> {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    return err(protocolError('bad_request', `the ${what} is not UTF-8`));
  }
  const json = parseStrictJson(text);
  if (!json.ok) return err(protocolError('bad_request', `the ${what} is not JSON: ${json.error}`));
  const parsed = schema.safeParse(json.value);
  if (!parsed.success) return err(protocolError('bad_request', `bad ${what}: ${summarize(parsed.error.issues)}`));
  return ok(parsed.data);
}

/** Check 5: a valid command whose kind is the endpoint's. */
export function parseCommand<K extends CommandKind>(
  bytes: Uint8Array,
  kind: K,
): Result<Extract<Command, { kind: K }>, ProtocolError> {
  const parsed = parseWith(bytes, commandSchema, 'command');
  if (!parsed.ok) return parsed;
  if (parsed.value.kind !== kind) {
    return err(protocolError('bad_request', `a ${parsed.value.kind} command sent to the ${kind} endpoint`));
  }
  return ok(parsed.value as Extract<Command, { kind: K }>);
}

export function parseAnswer<K extends CommandKind>(bytes: Uint8Array, kind: K): Result<AnswerFor<K>, ProtocolError> {
  return parseWith(bytes, ANSWER_SCHEMAS[kind] as unknown as z.ZodType<AnswerFor<K>>, 'answer');
}

// Check 9 for the content of writes: decoded within the command's byte budget, checked against its sha256.
import {
  confineRelative,
  decodeContent,
  err,
  ok,
  protocolError,
  type ContentEncoding,
  type Entry,
  type ProtocolError,
  type Result,
  truncate,
} from '@hostfiles/shared';
import type { StateEntry } from '../files/index.js';

/** What is left of `maxContentBytes` for the rest of one command: a gzip bomb stops where the budget does. */
export interface ContentBudget {
  readonly limit: number;
  left: number;
}

export function decodeWithin(
  content: {
    readonly content: string;
    readonly encoding?: ContentEncoding | undefined;
    readonly sha256: string;
    readonly size?: number | undefined;
  },
  budget: ContentBudget,
  where: string,
): Result<Buffer, ProtocolError> {
  const decoded = decodeContent(content.content, content.encoding, content.sha256, budget.left, content.size);
  if (!decoded.ok) {
    switch (decoded.error) {
      case 'too_large':
        return err(
          protocolError('too_large', `${where}: the command carries more than ${budget.limit} bytes of content`),
        );
      case 'bad_content':
        return err(protocolError('bad_request', `${where}: the content is not valid gzip of its size`));
      case 'sha256_mismatch':
        return err(protocolError('bad_request', `${where}: sha256 does not match the content`));
    }
  }
  budget.left -= decoded.value.length;
  return ok(decoded.value);
}

/**
 * The entries of a writeDir: each path confined (relative, normalized, no temp or lock names), none twice, none
 * both a file and the parent of another; each content decoded within the budget.
 */
export function checkEntries(
  entries: readonly Entry[],
  budget: ContentBudget,
  where: string,
): Result<StateEntry[], ProtocolError> {
  const paths = new Set<string>();
  const checked: StateEntry[] = [];
  for (const [index, entry] of entries.entries()) {
    const at = `${where} entry ${index}`;
    const components = confineRelative(entry.path);
    if (!components.ok) return err(protocolError('outside_root', `${at}: ${components.error}`));
    if (paths.has(entry.path))
      return err(protocolError('bad_request', `${at}: ${truncate(entry.path)} is listed twice`));
    paths.add(entry.path);
    const content = decodeWithin(entry, budget, at);
    if (!content.ok) return content;
    checked.push({ components: components.value, content: content.value });
  }
  for (const { components } of checked) {
    for (let i = 1; i < components.length; i++) {
      const parent = components.slice(0, i).join('/');
      if (paths.has(parent)) {
        return err(
          protocolError('bad_request', `${where}: ${truncate(parent)} is both a file and a directory of the state`),
        );
      }
    }
  }
  return ok(checked);
}

// Module hooks for module-trace.ts: each module URL resolved is appended to the file named by the register data.
import { appendFileSync } from 'node:fs';

let traceFile = '';

export function initialize(data: { readonly traceFile: string }): void {
  traceFile = data.traceFile;
}

interface Resolved {
  readonly url: string;
}

export async function resolve(
  specifier: string,
  context: unknown,
  next: (specifier: string, context: unknown) => Promise<Resolved>,
): Promise<Resolved> {
  const resolved = await next(specifier, context);
  appendFileSync(traceFile, `${resolved.url}\n`);
  return resolved;
}

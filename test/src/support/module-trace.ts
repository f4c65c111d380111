// `node --import <this file>`: records every module the process loads (its URL, once per import) in the file
// HOSTFILES_TEST_MODULE_TRACE names, whether imported (module hooks) or required: the `hostfiles` bin and its bundled
// command table are CommonJS, which node 20's module hooks do not see. For tests of what a command loads, never for
// timing.
import { appendFileSync } from 'node:fs';
import Module, { register } from 'node:module';
import { pathToFileURL } from 'node:url';

const traceFile = process.env['HOSTFILES_TEST_MODULE_TRACE'];
if (traceFile !== undefined) {
  register('./module-hooks.js', import.meta.url, { data: { traceFile } });
  // Every require resolves its name through Module._resolveFilename (node's own, stable since node 0.x, not typed).
  const cjs = Module as unknown as { _resolveFilename: (this: unknown, request: string, ...rest: unknown[]) => string };
  const resolveFilename = cjs._resolveFilename;
  cjs._resolveFilename = function (this: unknown, request: string, ...rest: unknown[]): string {
    const filename = resolveFilename.call(this, request, ...rest);
    appendFileSync(traceFile, `${filename.startsWith('/') ? pathToFileURL(filename).href : filename}\n`);
    return filename;
  };
}

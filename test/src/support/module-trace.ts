// `node --import <this file>`: records every module the process loads (its URL, once per import) in the file
// HOSTFILES_TEST_MODULE_TRACE names. For tests of what a command loads, never for timing.
import { register } from 'node:module';

const traceFile = process.env['HOSTFILES_TEST_MODULE_TRACE'];
if (traceFile !== undefined) register('./module-hooks.js', import.meta.url, { data: { traceFile } });

#!/usr/bin/env node
// The `hostfiles` command. A file of its own, present from the checkout on: pnpm links bins at install, before the
// build makes dist/ (a bin pointing into dist/ would be "Failed to create bin" and no command).
import { existsSync } from 'node:fs';

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write(
    `hostfiles: not built: run \`npx --yes pnpm@10 build\` in ${new URL('../../..', main).pathname}\n`,
  );
  process.exit(1);
}
await import(main.href);

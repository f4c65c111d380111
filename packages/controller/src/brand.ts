// Errors the CLI tells apart carry a brand (a registered symbol) instead of being told apart with `instanceof`: the
// command table is bundled apart from the modules that run commands (scripts/bundle-cli.mjs), so an error made by
// one copy of a class can reach a check written against the other copy, where `instanceof` would say no.

/** True when `value` is an object carrying `brand` (a `Symbol.for` symbol, the same in every copy of a module). */
export const hasBrand = (value: unknown, brand: symbol): boolean =>
  typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true;

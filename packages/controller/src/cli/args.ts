// A small argv parser: words and --flags (with `--flag value` or `--flag=value`), `--` ends the flags.
import { UsageError } from './errors.js';

export interface FlagSpec {
  /** without the dashes: 'host' for --host */
  readonly name: string;
  /** the value's placeholder in help (FILE, HOST...); absent for a switch */
  readonly value?: string;
  /** the command refuses to run without it (only for flags with a value) */
  readonly required?: boolean;
  readonly help: string;
  /** parsed, but left out of help: a removed flag kept only to be refused with the way (`sync --keep`) */
  readonly hidden?: boolean;
}

/** The placeholder of a flag whose value is a state's absolute path on a host: `--path`, `--tpm-path`, `--nvram-path`. */
export const ABS_PATH = 'ABS';

/**
 * A state's path as the operator gave it, less the trailing slashes shell completion leaves on a directory (`/`
 * itself stays `/`). The command line drops them as it reads an ABS_PATH flag, before any flow, check or row sees the
 * path, so one state is never recorded under two spellings; any other spelling a path is not normalized in (`//` or
 * `/./` inside it) is left for the flows to refuse.
 */
export function dropTrailingSlashes(path: string): string {
  let end = path.length;
  while (end > 1 && path[end - 1] === '/') end--;
  return path.slice(0, end);
}

export interface ParsedArgv {
  readonly words: readonly string[];
  /** a switch maps to true, a flag with a value to its value */
  readonly flags: ReadonlyMap<string, string | true>;
}

/**
 * Splits argv. `known` holds every flag of every command (a name means the same kind of flag everywhere), so
 * flags may stand anywhere, before or after the command words; the command then checks which ones it takes.
 */
export function parseArgv(argv: readonly string[], known: ReadonlyMap<string, FlagSpec>): ParsedArgv {
  const words: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] ?? '';
    if (token === '--') {
      words.push(...argv.slice(i + 1));
      break;
    }
    if (token === '-h') {
      setFlag(flags, 'help', true);
      continue;
    }
    if (!token.startsWith('-') || token === '-') {
      words.push(token);
      continue;
    }
    if (!token.startsWith('--')) throw unknownFlag(token, known);
    const eq = token.indexOf('=');
    const name = token.slice(2, eq === -1 ? undefined : eq);
    const spec = known.get(name);
    if (spec === undefined) throw unknownFlag(`--${name}`, known);
    if (spec.value === undefined) {
      if (eq !== -1) throw new UsageError(`--${name} takes no value`);
      setFlag(flags, name, true);
      continue;
    }
    let value: string | undefined;
    if (eq !== -1) value = token.slice(eq + 1);
    else {
      value = argv[i + 1];
      if (value !== undefined && value.startsWith('--')) value = undefined;
      if (value !== undefined) i++;
    }
    if (value === undefined || value === '') throw new UsageError(`--${name} needs a value (${spec.value})`);
    setFlag(flags, name, value);
  }
  return { words, flags };
}

function setFlag(flags: Map<string, string | true>, name: string, value: string | true): void {
  if (flags.has(name)) throw new UsageError(`--${name} is given more than once`);
  flags.set(name, value);
}

function unknownFlag(token: string, known: ReadonlyMap<string, FlagSpec>): UsageError {
  const guess = closest(
    token.replace(/^-+/, ''),
    [...known.keys()].filter((name) => name !== 'help'),
  );
  return new UsageError(`unknown option ${token}${guess === undefined ? '' : ` (did you mean --${guess}?)`}`);
}

/** The candidate within edit distance 2 of `word`, if exactly one is closest. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of candidates) {
    const d = distance(word, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

// The config's rules across fields, each checked on what of the config parsed: a field that did not parse skips the
// rules that read it, and no other (an operator sees every problem of a new host's config in one run).
import { isLoopbackHost } from '@hostfiles/shared';
import type { AgentConfig } from './config.js';
import { limitProblems } from './limits/server-limits.js';
import { overlaps, within } from './path-overlap.js';

/** Each field there when it parsed, left out when it did not. */
type Parsed<T> = { readonly [K in keyof T]?: T[K] | undefined };

/**
 * The fields of a config that parsed: each one on its own, and within `listen`, `roots`, `metrics` and each root's
 * `ownership` each of theirs on its own too (`limits` only whole: its fields have no defaults, so one that did not
 * parse could not be told from one left out). A valid config is one.
 */
export type ConfigFields = Parsed<Omit<AgentConfig, 'listen' | 'roots' | 'metrics'>> & {
  readonly listen?: Parsed<AgentConfig['listen']> | undefined;
  readonly roots?: Parsed<AgentConfig['roots']> | undefined;
  readonly metrics?: Parsed<NonNullable<AgentConfig['metrics']>> | undefined;
};

export interface ConfigProblem {
  readonly path: string[];
  readonly message: string;
}

/** Every rule across fields that `fields` break, in the order the config lists them. */
export function crossFieldProblems(fields: ConfigFields): ConfigProblem[] {
  return [
    ...plainHttpProblems(fields),
    ...(fields.maxBodyBytes === undefined || fields.limits === undefined
      ? []
      : limitProblems(fields.maxBodyBytes, fields.limits)),
    ...ownPathProblems(fields),
  ];
}

/** A listener in clear only on loopback, unless the operator says they mean it (an unparsed host or flag: skipped). */
function plainHttpProblems({ listen, metrics }: ConfigFields): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (metrics?.allowPlainHttp === false && metrics.host !== undefined && !isLoopbackHost(metrics.host)) {
    problems.push({
      path: ['metrics', 'host'],
      message:
        `metrics on ${metrics.host} would be open to anyone who can reach it: scrape through a loopback address ` +
        '(a local Prometheus or a proxy with TLS), or set metrics.allowPlainHttp',
    });
  }
  if (
    listen?.tls === false &&
    listen.allowPlainHttp === false &&
    listen.host !== undefined &&
    !isLoopbackHost(listen.host)
  ) {
    problems.push({
      path: ['listen', 'tls'],
      message:
        `plain HTTP on ${listen.host} would carry commands and file contents in clear: keep tls on, listen on a ` +
        'loopback address, or set listen.allowPlainHttp',
    });
  }
  return problems;
}

/** The roots apart, and the agent's own files apart from them, by their paths as written. */
function ownPathProblems({ roots = {}, stateDir, keyFile }: ConfigFields): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  // Each op is confined to the root of its type: nested roots would let a TpmState op reach NVRAM, or the reverse.
  if (roots.TpmState !== undefined && roots.NvRam !== undefined && overlaps(roots.TpmState, roots.NvRam)) {
    problems.push({ path: ['roots'], message: 'the two roots must not contain each other' });
  }
  for (const [name, root] of Object.entries(roots)) {
    if (root === undefined) continue;
    // The replay journal inside a root: a signed delete could remove it, and a replayed command then run again.
    // Containing a root is refused too: the agent's own directory and the states it serves are kept apart.
    if (stateDir !== undefined && overlaps(stateDir, root)) {
      problems.push({ path: ['stateDir'], message: `must not overlap the ${name} root` });
    }
    // Inside a root, a signed read would hand out the agent's private key and a write would replace it.
    if (keyFile !== undefined && within(keyFile, root)) {
      problems.push({ path: ['keyFile'], message: `must not be inside the ${name} root` });
    }
  }
  return problems;
}

// Reads the Prometheus text exposition format (0.0.4) as a scraper does, strictly: a line it cannot read fails the
// test, so a malformed exposition is caught here rather than by a Prometheus in production.
import { readFileSync } from 'node:fs';
import { get } from 'node:http';

export interface Sample {
  /** the sample's own name (`…_bucket`, `…_sum`, `…_count` for a histogram's) */
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Exposition {
  /** metric family → its TYPE */
  readonly types: ReadonlyMap<string, string>;
  readonly help: ReadonlyMap<string, string>;
  readonly samples: readonly Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const samples: Sample[] = [];
  const seen = new Set<string>();
  for (const [index, line] of text.split('\n').entries()) {
    const where = `line ${index + 1}: ${JSON.stringify(line)}`;
    if (line === '') continue;
    if (line.startsWith('#')) {
      const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
      if (meta === null) continue; // a plain comment
      const [, keyword, name = '', rest = ''] = meta;
      if (!NAME.test(name)) throw new Error(`bad metric name, ${where}`);
      if (keyword === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest))
          throw new Error(`bad TYPE, ${where}`);
        if (types.has(name)) throw new Error(`second TYPE for ${name}, ${where}`);
        types.set(name, rest);
      } else help.set(name, rest);
      continue;
    }
    const sample = parseSample(line, where);
    const key = `${sample.name}${JSON.stringify(Object.entries(sample.labels).sort())}`;
    if (seen.has(key)) throw new Error(`duplicate series, ${where}`);
    seen.add(key);
    samples.push(sample);
  }
  return { types, help, samples };
}

function parseSample(line: string, where: string): Sample {
  const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0];
  if (name === undefined) throw new Error(`no metric name, ${where}`);
  let at = name.length;
  const labels: Record<string, string> = {};
  if (line[at] === '{') {
    at++;
    while (line[at] !== '}') {
      const label = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(line.slice(at));
      if (label?.[1] === undefined || !LABEL_NAME.test(label[1])) throw new Error(`bad label, ${where}`);
      at += label[0].length;
      let value = '';
      for (;;) {
        const char = line[at++];
        if (char === undefined) throw new Error(`unterminated label value, ${where}`);
        if (char === '"') break;
        if (char === '\\') {
          const escaped = line[at++];
          if (escaped === 'n') value += '\n';
          else if (escaped === '\\' || escaped === '"') value += escaped;
          else throw new Error(`bad escape, ${where}`);
        } else value += char;
      }
      if (Object.hasOwn(labels, label[1])) throw new Error(`label ${label[1]} twice, ${where}`);
      labels[label[1]] = value;
      if (line[at] === ',') at++;
      else if (line[at] !== '}') throw new Error(`expected , or }, ${where}`);
    }
    at++;
  }
  const fields = line.slice(at).trim().split(/\s+/);
  const raw = fields[0];
  if (line[at] !== ' ' || raw === undefined || fields.length > 2) throw new Error(`bad value, ${where}`);
  const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : raw === 'NaN' ? NaN : Number(raw);
  if (Number.isNaN(value) && raw !== 'NaN') throw new Error(`bad value, ${where}`);
  return { name, labels, value };
}

/** The value of the one sample with exactly these labels (no more, no fewer); undefined when there is none. */
export function valueOf(exposition: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = JSON.stringify(Object.entries(labels).sort());
  return exposition.samples.find((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want)
    ?.value;
}

/** Every sample of one family (histograms: its _bucket, _sum and _count), as `labels → value` lines for asserting. */
export function family(exposition: Exposition, name: string): Sample[] {
  return exposition.samples.filter((s) => s.name === name || new RegExp(`^${name}_(bucket|sum|count)$`).test(s.name));
}

/** Every label value anywhere in the exposition. */
export const labelValues = (exposition: Exposition): string[] =>
  exposition.samples.flatMap((s) => Object.values(s.labels));

export interface Scrape {
  readonly status: number;
  readonly contentType: string | undefined;
  readonly text: string;
}

/** One plain-HTTP request to a metrics listener, as Prometheus makes it. */
export function scrape(port: number, path = '/metrics', method = 'GET'): Promise<Scrape> {
  return new Promise((resolve, reject) => {
    const request = get({ host: '127.0.0.1', port, path, method }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => {
        resolve({ status: response.statusCode ?? 0, contentType: response.headers['content-type'], text });
      });
      response.on('error', reject);
    });
    request.on('error', reject);
  });
}

/** Scrapes and parses; fails unless the answer is a 200 in the text format. */
export async function scrapeMetrics(port: number): Promise<Exposition> {
  const reply = await scrape(port);
  if (reply.status !== 200) throw new Error(`GET /metrics answered ${reply.status}: ${reply.text}`);
  if (!(reply.contentType ?? '').startsWith('text/plain; version=0.0.4')) {
    throw new Error(`GET /metrics answered ${String(reply.contentType)}`);
  }
  return parseExposition(reply.text);
}

/** Every metric name the README's table, DESIGN.md and docs/alerts.yml name: what operators build dashboards on. */
export function documentedNames(): Set<string> {
  const root = new URL('../../../', import.meta.url);
  const names = new Set<string>();
  for (const doc of ['README.md', 'docs/DESIGN.md', 'docs/alerts.yml']) {
    for (const match of readFileSync(new URL(doc, root), 'utf8').matchAll(/\bhostfiles_[a-z_]*[a-z](?![a-z_])/g)) {
      names.add(match[0]);
    }
  }
  return names;
}

// What an error message or a log field may say about input nobody has verified yet: a short prefix, marked as cut.
// One request must never make a log line or an answer as long as itself (a 4 MiB body, a 4 MB log line).

/** The most characters of one piece of input an error or a log field repeats. */
export const ECHO_MAX_CHARS = 64;
/** The most issues of one validation an error lists. */
const MAX_ISSUES = 5;
/** A validator's own message (not input) may be longer than an echo, but is still bounded. */
const MAX_MESSAGE_CHARS = 160;

/** `text` when short, else its first `max` characters and how long it was. */
export function truncate(text: string, max = ECHO_MAX_CHARS): string {
  if (text.length <= max) return text;
  return `${text.slice(0, max)}…(truncated, ${text.length} chars)`;
}

/** A zod issue, as far as a summary reads it; `keys` are the unrecognized keys of an `unrecognized_keys` issue. */
export interface IssueLike {
  readonly path: readonly PropertyKey[];
  readonly message: string;
  readonly code?: string;
  readonly keys?: readonly string[];
}

/** A validation's issues in one short line: the first few, each path and message bounded, unknown keys by the first. */
export function summarize(issues: readonly IssueLike[]): string {
  const shown = issues.slice(0, MAX_ISSUES).map(describeIssue).join('; ');
  return issues.length > MAX_ISSUES ? `${shown}; and ${issues.length - MAX_ISSUES} more` : shown;
}

function describeIssue(issue: IssueLike): string {
  const path = truncate(issue.path.map(String).join('.') || '(root)');
  // zod lists every unrecognized key in its message: a body of a million keys would be a message of a million keys.
  if (issue.code === 'unrecognized_keys' && issue.keys !== undefined && issue.keys.length > 0) {
    const [first = ''] = issue.keys;
    const more = issue.keys.length > 1 ? ` and ${issue.keys.length - 1} more` : '';
    return `${path}: unknown key "${truncate(first)}"${more}`;
  }
  return `${path}: ${truncate(issue.message, MAX_MESSAGE_CHARS)}`;
}

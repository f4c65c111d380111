// Seams for concurrency tests: an agent client that holds one command at a chosen point until the test lets it go,
// and a queue that tells when a flow is queued behind another. Two flows are interleaved by these events, never by
// sleeps: the test knows that the first flow stands exactly where it wants it, and whether the second one ran past
// it or waits for it.
import { createVmQueue, type AgentClient, type VmQueue } from '@hostfiles/controller';
import type { CommandKind } from '@hostfiles/shared';

export interface Gate {
  /** resolves once the held command has reached the gate */
  readonly reached: Promise<void>;
  /** lets it go on */
  open(): void;
}

/**
 * Wraps a real agent client: the first command `match` picks is held `before` it is sent (it is on its way, the
 * agent has not seen it) or `after` its answer came (the agent ran it, the flow does not know yet). Every other
 * command passes untouched.
 */
export function gatedAgents(
  inner: AgentClient,
  match: (kind: CommandKind, body: unknown) => boolean,
  when: 'before' | 'after',
): { readonly agents: AgentClient; readonly gate: Gate } {
  let reach: () => void = () => undefined;
  let open: () => void = () => undefined;
  const reached = new Promise<void>((resolve) => (reach = resolve));
  const opened = new Promise<void>((resolve) => (open = resolve));
  let armed = true;
  const hold = async (): Promise<void> => {
    reach();
    await opened;
  };
  const agents: AgentClient = {
    info: (endpoint) => inner.info(endpoint),
    certificate: (url) => inner.certificate(url),
    close: () => inner.close(),
    async send(target, kind, body, options) {
      const held = armed && match(kind, body);
      if (held) armed = false;
      if (held && when === 'before') await hold();
      const answer = await inner.send(target, kind, body, options);
      if (held && when === 'after') await hold();
      return answer;
    },
  };
  return { agents, gate: { reached, open } };
}

/** A files.apply carrying at least one op of this kind. */
export const appliesOp =
  (op: 'write' | 'writeDir' | 'delete') =>
  (kind: CommandKind, body: unknown): boolean =>
    kind === 'files.apply' && (body as { ops: readonly { op: string }[] }).ops.some((o) => o.op === op);

/** A real queue that also says when a run naming `id` (a VM's uuid) has to wait behind an earlier run. */
export function watchedQueue(): { readonly queue: VmQueue; readonly queued: (id: string) => Promise<void> } {
  const waited: string[][] = [];
  const watchers: { id: string; resolve: () => void }[] = [];
  const names = (keys: readonly string[], id: string): boolean => keys.some((key) => key.includes(id));
  const queue = createVmQueue({
    onWait(keys) {
      waited.push([...keys]);
      for (const watcher of watchers.filter((w) => names(keys, w.id))) watcher.resolve();
    },
  });
  return {
    queue,
    queued: (id) =>
      new Promise<void>((resolve) => {
        if (waited.some((keys) => names(keys, id))) resolve();
        else watchers.push({ id, resolve });
      }),
  };
}

/**
 * Resolves once `flow` has finished (either way) or has been queued behind another flow, whichever comes first: where
 * flows are serialized the second one waits, where they are not it runs to its end; neither way needs a timer.
 */
export async function finishedOrQueued(flow: Promise<unknown>, queued: Promise<void>): Promise<void> {
  await Promise.race([flow.then(noop, noop), queued]);
}

const noop = (): void => undefined;

// Every change of a host's state goes through here, so the one who runs the flows (serve's log) hears of each
// transition once — whichever flow saw it — with the host's name and, going down, why.
import type { AgentCallError } from '../agents/index.js';
import type { Host } from '../store/index.js';
import type { FlowDeps } from './deps.js';

/** Records a host Connected (seen now) or Disconnected; tells `deps.onHostState` when that changed its state. */
export async function markHost(
  deps: FlowDeps,
  host: Pick<Host, 'uuid' | 'name'>,
  state: Host['state'],
  reason?: string,
): Promise<void> {
  const from = await deps.store.setHostState(host.uuid, state, state === 'Connected' ? deps.now() : undefined);
  if (from === state) return;
  deps.onHostState?.({
    hostUuid: host.uuid,
    hostName: host.name,
    from,
    to: state,
    ...(state === 'Disconnected' && reason !== undefined ? { reason } : {}),
  });
}

/** A failed call leaves the host Disconnected when it says the host could not be reached at all. */
export async function markUnreachable(
  deps: FlowDeps,
  host: Pick<Host, 'uuid' | 'name'>,
  error: AgentCallError,
): Promise<void> {
  if (error.failure === 'unreachable' || error.failure === 'timeout')
    await markHost(deps, host, 'Disconnected', `${error.failure}: ${error.message}`);
}

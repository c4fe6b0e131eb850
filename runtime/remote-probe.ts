// The state of a remote node as its probes and batches see it. A node that fails its health check is down; one that
// answers health but let a batch pass its timeout is suspect. Either gets traffic again only after a probe in which
// both its health check and a real inference answer in time, so a node that answers health alone cannot flap back.
import type { ReplicaState } from './replica.js';

export type RemoteEvent =
  | { readonly kind: 'batch-timeout' }
  | { readonly kind: 'request-failed' }
  | { readonly kind: 'shutting-down' }
  /** A periodic probe: health, and (when health passed and the node is not ready) an inference. */
  | { readonly kind: 'probe'; readonly health: boolean; readonly inference?: boolean };

export interface RemoteTransition {
  readonly state: ReplicaState;
  readonly reason: string;
}

/** Whether a probe in this state must also send an inference (only a node out of service needs to prove it). */
export function probeNeedsInference(state: ReplicaState): boolean {
  return state === 'down' || state === 'suspect';
}

/** The next state, or undefined when the event changes nothing. */
export function nextRemoteState(state: ReplicaState, e: RemoteEvent): RemoteTransition | undefined {
  if (state === 'closed' || state === 'pending') return undefined;
  switch (e.kind) {
    case 'batch-timeout':
      return state === 'ready' ? { state: 'suspect', reason: 'a batch passed its timeout' } : undefined;
    case 'request-failed':
      return state === 'ready' ? { state: 'down', reason: 'a request to the node failed' } : undefined;
    case 'shutting-down':
      return state === 'down' ? undefined : { state: 'down', reason: 'remote node is shutting down' };
    case 'probe':
      if (!e.health) return state === 'down' ? undefined : { state: 'down', reason: 'health check failed' };
      if (state === 'ready') return undefined;
      if (e.inference === true) return { state: 'ready', reason: 'remote node answers health and inference again' };
      return state === 'suspect' ? undefined : { state: 'suspect', reason: 'health passes but inference does not' };
  }
}

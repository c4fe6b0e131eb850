// The remote node's state machine, table-driven: a batch timeout makes a ready node suspect, a failed health check
// makes it down, and only a probe whose health check and real inference both pass brings it back.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { nextRemoteState, probeNeedsInference, type RemoteEvent } from '../../../runtime/remote-probe.js';
import type { ReplicaState } from '../../../runtime/replica.js';

const probe = (health: boolean, inference?: boolean): RemoteEvent =>
  inference === undefined ? { kind: 'probe', health } : { kind: 'probe', health, inference };

describe('nextRemoteState', () => {
  const cases: [string, ReplicaState, RemoteEvent, ReplicaState | undefined][] = [
    ['a batch timeout makes a ready node suspect', 'ready', { kind: 'batch-timeout' }, 'suspect'],
    ['a batch timeout on a down node changes nothing', 'down', { kind: 'batch-timeout' }, undefined],
    ['a failed request takes a ready node down', 'ready', { kind: 'request-failed' }, 'down'],
    ['a failed request leaves a suspect node suspect', 'suspect', { kind: 'request-failed' }, undefined],
    ['shutting down takes a suspect node down', 'suspect', { kind: 'shutting-down' }, 'down'],
    ['a failed health check takes a ready node down', 'ready', probe(false), 'down'],
    ['a failed health check takes a suspect node down', 'suspect', probe(false), 'down'],
    ['health alone does not bring a suspect node back', 'suspect', probe(true, false), undefined],
    ['health alone does not bring a down node back: it becomes suspect', 'down', probe(true, false), 'suspect'],
    ['health and inference bring a suspect node back', 'suspect', probe(true, true), 'ready'],
    ['health and inference bring a down node back', 'down', probe(true, true), 'ready'],
    ['a passing probe of a ready node changes nothing', 'ready', probe(true), undefined],
    ['a closed node stays closed', 'closed', probe(true, true), undefined],
    ['a starting node is left to start()', 'pending', { kind: 'batch-timeout' }, undefined],
  ];
  for (const [name, from, e, want] of cases) {
    test(name, () => {
      assert.equal(nextRemoteState(from, e)?.state, want);
    });
  }
});

test('only a node out of service is probed with an inference', () => {
  assert.deepEqual((['ready', 'suspect', 'down', 'pending', 'closed'] as const).map(probeNeedsInference), [
    false,
    true,
    true,
    false,
    false,
  ]);
});

import { strict as assert } from 'assert';
import { alertSummary, recordAudit } from '../../lib/audit';
import { FalcoAlert } from '../../lib/alert';
import { decodeOrThrow } from '../../lib/decode';
import { memoryLogger } from '../../lib/log';
import { namespaceName, nodeName, objectName } from '../../lib/names';
import type { Target } from '../../lib/resolve';
import { AUDIT_RESOURCES } from '../../lib/targets/audit-object';
import { alert, nodeObject, podObject } from '../helpers/fixtures';
import { MemoryCluster } from '../helpers/memory-cluster';

/**
 * lib/audit.ts records the change on the event stream of each kind of target, as `kubectl describe` finds it: a pod's
 * in its namespace; a node's in `default` (a cluster-wide object's, as the kubelet records a node's) and its pod's; an
 * audited object's in its namespace, or in `default` when it has none.
 */

const ns = namespaceName('prod')!;
const pod = { namespace: ns, name: objectName('kubecon')! };
const NOTE = { action: 'test-action', reason: 'FalcoResponseTested', what: 'tested it', change: 'tested' };

function hostileAlert() {
  const a = alert('terminal-shell');
  // Attacker-written: a bidi override and an ANSI escape in the rule name.
  a.rule = 'Shell \u202e\u001b[2J in container';
  return decodeOrThrow(FalcoAlert, a);
}

const configMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'aws-creds', namespace: 'prod', uid: 'uid-aws-creds', resourceVersion: '1' } };
const clusterRole = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'escalated', uid: 'uid-escalated', resourceVersion: '1' } };

const CASES: [string, Target, [string, Record<string, unknown>][]][] = [
  [
    'a pod: one Event in its namespace',
    { kind: 'pod', pod, found: podObject('prod', 'kubecon') },
    [['/api/v1/namespaces/prod/events/', { apiVersion: 'v1', kind: 'Pod', name: 'kubecon', namespace: 'prod', uid: 'uid-kubecon' }]],
  ],
  [
    'a node: one on the node, in default, and one on its pod',
    { kind: 'node', pod, node: { name: nodeName('worker-1')! }, found: nodeObject('worker-1') as never, podUid: 'uid-kubecon' },
    [
      ['/api/v1/namespaces/default/events/', { apiVersion: 'v1', kind: 'Node', name: 'worker-1', uid: 'uid-worker-1' }],
      ['/api/v1/namespaces/prod/events/', { apiVersion: 'v1', kind: 'Pod', name: 'kubecon', namespace: 'prod', uid: 'uid-kubecon' }],
    ],
  ],
  [
    'a namespaced object an audit alert names: one in its namespace, with its group version',
    { kind: 'audit-object', object: { resource: AUDIT_RESOURCES.get('configmaps')!, namespace: ns, name: objectName('aws-creds')! }, found: configMap },
    [['/api/v1/namespaces/prod/events/', { apiVersion: 'v1', kind: 'ConfigMap', name: 'aws-creds', namespace: 'prod', uid: 'uid-aws-creds' }]],
  ],
  [
    'a cluster-wide object an audit alert names: one in default',
    { kind: 'audit-object', object: { resource: AUDIT_RESOURCES.get('clusterroles')!, name: objectName('escalated')! }, found: clusterRole },
    [['/api/v1/namespaces/default/events/', { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', name: 'escalated', uid: 'uid-escalated' }]],
  ],
];

describe('audit Events on every kind of target (lib/audit.ts)', () => {
  for (const [what, target, expected] of CASES) {
    it(what, async () => {
      // Given
      const cluster = new MemoryCluster();
      const decoded = hostileAlert();

      // When
      const recorded = await recordAudit({ alert: decoded, kube: cluster.kube(), log: memoryLogger(), deadline: Date.now() + 5000 }, target, NOTE);

      // Then: each Event where kubectl describe looks for it, its message escaped
      assert.equal(recorded, true);
      const events = expected.map(([prefix]) => cluster.under(prefix)).flat() as any[];
      assert.deepEqual(
        events.map((e) => e.involvedObject),
        expected.map(([, involved]) => involved),
      );
      for (const e of events) {
        assert.equal(e.reason, 'FalcoResponseTested');
        assert.equal(e.source.component, 'falco-response/test-action');
        assert.equal(e.message, `test-action tested it after ${alertSummary(decoded)}`);
        assert.ok(e.message.includes('Shell \\u202e\\u001b[2J in container'), e.message);
        assert.ok(!e.message.includes('\u202e') && !e.message.includes('\u001b'), 'an unescaped control in the Event');
      }
    });
  }

  it('answers false when one of a node’s two Events fails, having recorded the other, and warns naming the missing one', async () => {
    const cluster = new MemoryCluster().failNext(1, [500, { kind: 'Status', reason: 'InternalError', message: 'boom', code: 500 }], { path: '/api/v1/namespaces/prod/events' });
    const log = memoryLogger();
    const target: Target = { kind: 'node', pod, node: { name: nodeName('worker-1')! }, found: nodeObject('worker-1') as never, podUid: 'uid-kubecon' };
    const recorded = await recordAudit({ alert: hostileAlert(), kube: cluster.kube(), log, deadline: Date.now() + 5000 }, target, NOTE);
    assert.equal(recorded, false);
    assert.equal(cluster.under('/api/v1/namespaces/default/events/').length, 1);
    assert.deepEqual(
      log.lines.map((l) => [l.level, l.message]),
      [['warn', "the node 'worker-1' was tested but the audit event on the pod 'kubecon' in the namespace 'prod' could not be recorded"]],
    );
  });
});

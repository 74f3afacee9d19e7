import type { Skip } from '../checks';
import { describeValue } from '../decode';
import type { Kube } from '../kube/client';
import { KubeAnswerError } from '../kube/errors';
import { describeNode, getNode } from '../kube/nodes';
import { describePod } from '../kube/pods';
import { nodeName as checkedNodeName } from '../names';
import { sourceOf, type Reading, type RefOfKind, type TargetSpec } from '../resolve';
import { containerOf, NO_POD_CHECK, POD_FIELDS, podOf, readPod } from './pod';

/** The node of the pod `ref` names: the pod is read, then the node its `spec.nodeName` names. */
async function readNode(kube: Kube, ref: RefOfKind<'node'>, deadline: number): Promise<Reading<'node'>> {
  const { pod } = ref;
  const reading = await readPod(kube, pod, deadline);
  if ('skip' in reading) return { skip: reading.skip, ref };
  const nodeName: unknown = reading.target.found.spec?.nodeName;
  if (nodeName === undefined || nodeName === null || nodeName === '') {
    return { skip: { code: 'no-node', reason: `${describePod(pod)} is not scheduled on a node yet (spec.nodeName is empty)` }, ref };
  }
  // The pod's answer was checked for the fields the pod actions read; this one goes into a URL, so it is checked too.
  const name = typeof nodeName === 'string' ? checkedNodeName(nodeName) : undefined;
  if (name === undefined) {
    throw new KubeAnswerError(
      { verb: 'get', resource: 'pods', group: '', object: describePod(pod) },
      `the API server's answer is not that pod (spec.nodeName: expected a node name, got ${describeValue(nodeName)})`,
    );
  }
  const node = { name };
  const found = await getNode(kube, node, deadline);
  if (found === undefined) return { skip: { code: 'node-gone', reason: `${describeNode(node)} of ${describePod(pod)} is already gone` }, ref: { ...ref, node } };
  // The pod's uid, for its audit Event: `kubectl describe pod` shows the Events of that uid only.
  return { target: { kind: 'node', pod, node, found, podUid: reading.target.found.metadata?.uid } };
}

/** The node the alert's pod runs on: the runner reads the pod and the node (get on both) for the guards and the action. */
export const NODE_TARGET: TargetSpec<'node'> = {
  kind: 'node',
  sources: ['syscall', 'k8s_audit'],
  requiredFields: POD_FIELDS,
  checks: {
    find: NO_POD_CHECK,
    read: {
      name: 'exists',
      description:
        'the pod is read, then the node its `spec.nodeName` names; a pod the API server does not have is skipped, code `pod-gone`; one not scheduled yet, code `no-node`; a node it does not have, code `node-gone`.',
    },
  },
  permissions: () => [
    { apiGroup: '', resource: 'nodes', verbs: ['get'] },
    { apiGroup: '', resource: 'pods', verbs: ['get'] },
  ],
  resourceProblems: (resources) => (resources.length === 0 ? [] : ['resources: only an audit-object action names resources']),
  refOf(alert): RefOfKind<'node'> | Skip {
    const pod = podOf(alert, sourceOf(alert));
    return 'code' in pod ? pod : { kind: 'node', pod };
  },
  read: readNode,
  // The container runs on the node: a new pod, or the pod on a node created again, runs containers of new ids.
  identityOf: containerOf,
};

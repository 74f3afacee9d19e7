import { knownField, type FalcoAlert } from '../alert';
import type { Skip } from '../checks';
import { describeValue } from '../decode';
import type { Kube } from '../kube/client';
import { getPod } from '../kube/pods';
import { sourceOf, type AlertSource, type Reading, type TargetSpec } from '../resolve';
import { POD_NAME_FIELDS, POD_NAMESPACE_FIELDS, targetOf, type PodRef } from '../target';

/**
 * The pod an alert names (lib/target.ts targetOf: `k8s.*`, `k8smeta.*`, or `ka.target.*` for an audit event about a
 * pod), or the skip `no-pod`. A syscall alert must name its container too: without `container.id` there is no
 * telling a host event (`host`) from a pod's.
 */
export function podOf(alert: FalcoAlert, source: AlertSource): PodRef | Skip {
  const target = targetOf(alert);
  if (target.kind === 'none') return { code: 'no-pod', reason: target.reason };
  if (source === 'syscall' && knownField(alert, ['container.id']) === undefined) {
    const namespaceField = knownField(alert, POD_NAMESPACE_FIELDS)?.field ?? 'k8s.ns.name';
    const nameField = knownField(alert, POD_NAME_FIELDS)?.field ?? 'k8s.pod.name';
    return {
      code: 'no-pod',
      reason: `the alert does not say which container it is about (container.id is ${describeValue(alert.output_fields['container.id'] ?? null)}, although ${namespaceField} and ${nameField} are set): the rule's output must include container.id`,
    };
  }
  return target.pod;
}

/**
 * A syscall alert's container (`container.id`, which podOf requires): a pod created again under the same name runs
 * containers of new ids, so it is a new target. An audit event names its pod by name only: no identity.
 */
export function containerOf(alert: FalcoAlert): string | undefined {
  return sourceOf(alert) === 'syscall' ? knownField(alert, ['container.id'])?.value : undefined;
}

/** The pod as read; the API server's NotFound is the skip `pod-gone`. */
export async function readPod(kube: Kube, pod: PodRef, deadline: number): Promise<Reading<'pod'>> {
  // undefined: the API server said NotFound; an answer that is not this very pod throws (lib/kube/pods.ts).
  const found = await getPod(kube, pod, deadline);
  if (found === undefined) {
    return { skip: { code: 'pod-gone', reason: `the pod '${pod.name}' in the namespace '${pod.namespace}' is already gone` }, ref: { kind: 'pod', pod } };
  }
  return { target: { kind: 'pod', pod, found } };
}

/** The fields a pod is found by, for each source; the node kind finds its pod by the same. */
export const POD_FIELDS = {
  syscall: ['container.id', 'k8s.ns.name', 'k8s.pod.name'],
  k8s_audit: ['ka.target.resource', 'ka.target.namespace', 'ka.target.name'],
} as const;

export const NO_POD_CHECK = {
  name: 'target',
  description:
    'an alert that names no pod (a host event, a container outside Kubernetes, an audit event about another resource, a syscall alert without `container.id`) is skipped, code `no-pod`; a name that is not a valid Kubernetes name is refused (400).',
};

/** The alert's pod: the runner reads it (get on pods) for the opt-out guard and the action. */
export const POD_TARGET: TargetSpec<'pod'> = {
  kind: 'pod',
  sources: ['syscall', 'k8s_audit'],
  requiredFields: POD_FIELDS,
  checks: { find: NO_POD_CHECK, read: { name: 'exists', description: 'the pod is read; one the API server does not have is skipped, code `pod-gone`.' } },
  permissions: () => [{ apiGroup: '', resource: 'pods', verbs: ['get'] }],
  resourceProblems: (resources) => (resources.length === 0 ? [] : ['resources: only an audit-object action names resources']),
  refOf(alert) {
    const pod = podOf(alert, sourceOf(alert));
    return 'code' in pod ? pod : { kind: 'pod', pod };
  },
  read: (kube, ref, deadline) => readPod(kube, ref.pod, deadline),
  identityOf: containerOf,
};

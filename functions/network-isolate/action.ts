import { definePodAction, touchedPod, type ActionCheckInput } from '../../lib/action';
import type { Check } from '../../lib/checks';
import type { Kube } from '../../lib/kube/client';
import {
  createNetworkPolicy,
  describeNetworkPolicy,
  getNetworkPolicy,
  replaceNetworkPolicy,
  type NetworkPolicyRef,
} from '../../lib/kube/networkpolicies';
import { describePod, mergePatchPod, replacedReason } from '../../lib/kube/pods';
import { labelKeyText } from '../../lib/labels';
import { ActionFailedError } from '../../lib/outcome';
import { booleanText, namespaceListText, param } from '../../lib/params';
import { cidrListText, NAMESPACE_NAME_LABEL, namespaceNameLabelText, policyNameText, quarantinePolicy, sameSpec, type QuarantinePolicy } from './policy';

/** What the policy step found or did. */
type PolicyStep = 'created' | 'restored' | 'unchanged';
/** `answerLost`: a write was retried after its answer was lost, and the read after it found the policy as wanted. */
interface PolicyResult {
  readonly step: PolicyStep;
  readonly answerLost: boolean;
}

/** Reads and writes race with other callers (ten alerts at once): a 409 means read again, a bounded number of times. */
const POLICY_ATTEMPTS = 3;

/**
 * Makes the namespace's quarantine policy equal `wanted`: create it when absent, PUT it back (with the resourceVersion
 * read) when it drifted, leave it when equal. In dry run it only reads, and says what it would do.
 */
async function ensurePolicy(kube: Kube, ref: NetworkPolicyRef, wanted: QuarantinePolicy, deadline: number, dryRun: boolean): Promise<PolicyResult> {
  // The write of ours that may have been done although its retry met a 409: the next read tells whether it stands.
  let lostWrite: 'created' | 'restored' | undefined;
  for (let attempt = 1; attempt <= POLICY_ATTEMPTS; attempt++) {
    const existing = await getNetworkPolicy(kube, ref, deadline);
    if (existing === undefined) {
      if (dryRun) return { step: 'created', answerLost: false };
      const created = await createNetworkPolicy(kube, ref, wanted, deadline);
      if (created.outcome === 'created' && !created.answerLost) return { step: 'created', answerLost: false };
      // A 409: a concurrent caller created it since it was read, or our own earlier attempt did; read it again.
      if (created.outcome === 'created') lostWrite = 'created';
      continue;
    }
    // Found as configured right after our own write was retried into a 409: reported as this call's write, as
    // delete-pod reports a retried DELETE that finds the pod gone.
    if (sameSpec(existing.spec, wanted.spec)) return lostWrite === undefined ? { step: 'unchanged', answerLost: false } : { step: lostWrite, answerLost: true };
    lostWrite = undefined;
    if (dryRun) return { step: 'restored', answerLost: false };
    // The whole object as read, spec replaced: whatever else people or tools put on it (labels, annotations) stays.
    const replaced = await replaceNetworkPolicy(kube, ref, { ...existing, spec: wanted.spec }, deadline);
    if (replaced.outcome === 'replaced') return { step: 'restored', answerLost: false };
    // A 409: it changed again since it was read (or our own earlier attempt changed it); read it again.
    if (replaced.answerLost) lostWrite = 'restored';
  }
  throw new Error(`${describeNetworkPolicy(ref)} kept changing while it was written: the API server answered 409 Conflict ${POLICY_ATTEMPTS} times`);
}

function policyPhrase({ step, answerLost }: PolicyResult, ref: NetworkPolicyRef, dryRun: boolean): string {
  const policy = `the NetworkPolicy '${ref.name}'`;
  switch (step) {
    case 'created':
      if (answerLost) return `created ${policy} (the answer to an earlier attempt was lost, and the retry found it in place)`;
      return `${dryRun ? 'would create' : 'created'} ${policy}`;
    case 'restored':
      if (answerLost) return `restored ${policy} (it had drifted from its configuration; the answer to an earlier attempt was lost, and the retry found it restored)`;
      return `${dryRun ? 'would restore' : 'restored'} ${policy} (it had drifted from its configuration)`;
    case 'unchanged':
      return `${policy} is as configured`;
  }
}

const parameters = {
  quarantineLabel: param(
    'QUARANTINE_LABEL',
    labelKeyText,
    'falco-response.io/quarantine',
    'the label (set to "true") that the NetworkPolicy selects; the pod gets it once the policy is in place',
  ),
  policyName: param(
    'POLICY_NAME',
    policyNameText,
    'falco-response-quarantine',
    "the name of the NetworkPolicy, one per namespace; it is restored whenever it drifts from this function's configuration",
  ),
  allowDns: param(
    'ALLOW_DNS',
    booleanText,
    'false',
    'true: let isolated pods query cluster DNS (UDP and TCP 53 to the pods labelled k8s-app=kube-dns in the namespace kube-system, selected by NAMESPACE_NAME_LABEL)',
  ),
  allowCidrs: param(
    'ALLOW_CIDRS',
    cidrListText,
    '',
    'CIDRs isolated pods may still exchange traffic with (both ways), comma-separated, e.g. a forensics host',
  ),
  allowNamespaces: param(
    'ALLOW_NAMESPACES',
    namespaceListText,
    '',
    'namespaces whose pods isolated pods may still exchange traffic with (both ways), comma-separated, selected by NAMESPACE_NAME_LABEL',
  ),
  namespaceNameLabel: param(
    'NAMESPACE_NAME_LABEL',
    namespaceNameLabelText,
    NAMESPACE_NAME_LABEL,
    "the namespace label whose value is the namespace's name, by which ALLOW_DNS and ALLOW_NAMESPACES select namespaces; Kubernetes sets " +
      `${NAMESPACE_NAME_LABEL} itself from 1.21 on only: on 1.17 to 1.20 label those namespaces (kubectl label namespace kube-system ` +
      `${NAMESPACE_NAME_LABEL}=kube-system) or name a label they carry`,
  ),
};
type NetworkIsolateParams = typeof parameters;

/** A pod on the node's network: no NetworkPolicy applies to it, so labelling it isolated would be a lie. */
const hostNetwork: Check<ActionCheckInput<NetworkIsolateParams, 'pod'>> = {
  name: 'host-network',
  description: 'a pod that uses the node\'s network (`hostNetwork`) is left alone, code `not-applicable`: no NetworkPolicy can isolate it.',
  check: ({ target }) =>
    target.found.spec?.hostNetwork === true
      ? {
          code: 'not-applicable',
          reason: `${describePod(target.pod)} uses the node's network (hostNetwork): no NetworkPolicy can isolate it, so it is not labelled as isolated`,
        }
      : undefined,
};

export default definePodAction({
  name: 'network-isolate',
  description:
    "Cuts the pod named by the alert off the network and keeps it running for forensics: a NetworkPolicy of the pod's namespace denies all traffic of the pods carrying the quarantine label, then the pod gets that label.",
  guardDefaults: { rules: 'Terminal shell in container' },
  parameters,
  permissions: [
    { apiGroup: '', resource: 'pods', verbs: ['get', 'patch'] },
    { apiGroup: 'networking.k8s.io', resource: 'networkpolicies', verbs: ['get', 'create', 'update'] },
    { apiGroup: '', resource: 'events', verbs: ['create'] },
  ],
  checks: [hostNetwork],
  async run({ target, params, kube, deadline, dryRun }) {
    const { pod, found } = target;
    const ref: NetworkPolicyRef = { namespace: pod.namespace, name: params.policyName };
    const key = params.quarantineLabel;
    const label = `${key}=true`;

    // The policy first: a pod must never carry the quarantine label while nothing enforces it.
    let result: PolicyResult;
    try {
      result = await ensurePolicy(kube, ref, quarantinePolicy(ref, params), deadline, dryRun);
    } catch (error) {
      throw new ActionFailedError(
        `${describePod(pod)} was not isolated and not labelled ${label}, because ${describeNetworkPolicy(ref)} could not be put in place: ${(error as Error).message}`,
      );
    }

    const { step } = result;
    const alreadyLabelled = found.metadata?.labels?.[key] === 'true';
    const policy = policyPhrase(result, ref, dryRun);
    const touched = [
      { kind: 'NetworkPolicy', namespace: ref.namespace, name: ref.name, changed: step !== 'unchanged' },
      touchedPod(pod, !alreadyLabelled),
    ];
    const facts = { policy: ref.name, policyStep: step, labelled: !alreadyLabelled };
    if (dryRun) {
      const labelling = alreadyLabelled ? `the pod already carries ${label}` : `would label the pod ${label}`;
      return { status: 'done', message: `would isolate ${describePod(pod)}: ${policy}; ${labelling}`, touched, facts };
    }
    if (step === 'unchanged' && alreadyLabelled) {
      return { status: 'done', message: `${describePod(pod)} is already isolated: ${policy} and the pod carries ${label}`, touched, facts };
    }
    if (!alreadyLabelled) {
      const uid = found.metadata?.uid;
      // uid: were the pod replaced by a new one of the same name, the API server refuses to label the newcomer.
      const patched = await mergePatchPod(kube, pod, { metadata: { ...(uid === undefined ? {} : { uid }), labels: { [key]: 'true' } } }, deadline);
      if (patched.outcome === 'gone') {
        return { status: 'skipped', code: 'pod-gone', reason: `${describePod(pod)} was deleted before it could be labelled ${label} (${policy})` };
      }
      if (patched.outcome === 'replaced') {
        return { status: 'skipped', code: 'pod-gone', reason: `${replacedReason(pod, uid)} (${policy})` };
      }
    }
    const done = `${policy}; ${alreadyLabelled ? `the pod already carried ${label}` : `labelled the pod ${label}`}`;
    return {
      status: 'done',
      message: `isolated ${describePod(pod)}: ${done}`,
      touched,
      audit: { reason: 'FalcoResponseIsolated', what: `isolated the pod (${done})`, change: 'isolated' },
      facts,
    };
  },
});

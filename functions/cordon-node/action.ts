import type { V1Node } from '@kubernetes/client-node';
import { defineAction, type ActionCheckInput, type Touched } from '../../lib/action';
import type { Check } from '../../lib/checks';
import { describeValue } from '../../lib/decode';
import type { Kube } from '../../lib/kube/client';
import { describeNode, getNode, patchNodeScheduling, taintText, type NodeRef, type NodeSchedulingPatch, type NodeTaint } from '../../lib/kube/nodes';
import { describePod } from '../../lib/kube/pods';
import { labelKeyExpectation } from '../../lib/labels';
import { ActionFailedError } from '../../lib/outcome';
import { isDns1123Subdomain, isLabelValue } from '../../lib/names';
import { booleanText, listText, param, type ParamValues, textCodec } from '../../lib/params';
import { NODE_TARGET } from '../../lib/targets/node';

/** The labels that mark a control-plane node: `control-plane` from Kubernetes 1.20 on, `master` before. */
export const CONTROL_PLANE_LABELS = ['node-role.kubernetes.io/control-plane', 'node-role.kubernetes.io/master'];

/** The effects TAINT_EFFECT takes; empty: no taint, the node is only cordoned. */
const TAINT_EFFECTS = ['NoSchedule', 'NoExecute'] as const;
type TaintEffect = (typeof TAINT_EFFECTS)[number];

const taintEffectText = textCodec<TaintEffect | undefined>(
  (s) => {
    const effect = s.trim();
    if (effect === '') return { value: undefined };
    const known = TAINT_EFFECTS.find((e) => e === effect);
    return known === undefined ? { expected: 'NoSchedule, NoExecute, or nothing for no taint' } : { value: known };
  },
  (e) => e ?? '',
);

/**
 * A taint key of our own: a label key (lib/labels.ts) outside the prefixes Kubernetes reserves, so that it can never
 * pass for, or fight with, a taint the node controller manages (`node.kubernetes.io/unschedulable` is set for every
 * cordoned node, `node.kubernetes.io/not-ready`, …).
 */
const taintKeyText = textCodec<string>(
  (s) => {
    const key = s.trim();
    const expected = labelKeyExpectation(key);
    if (expected !== undefined) return { expected: expected.replace('a label key', 'a taint key') };
    const prefix = key.includes('/') ? key.slice(0, key.indexOf('/')) : '';
    const reserved = ['kubernetes.io', 'k8s.io'].some((r) => prefix === r || prefix.endsWith(`.${r}`));
    return reserved ? { expected: `a taint key outside the prefixes Kubernetes reserves (kubernetes.io, k8s.io), such as falco-response.io/compromised` } : { value: key };
  },
  (s) => s,
);

const taintValueText = textCodec<string>(
  (s) => {
    const value = s.trim();
    return isLabelValue(value)
      ? { value }
      : { expected: "a taint value: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit, or nothing" };
  },
  (s) => s,
);

const parameters = {
  taintEffect: param(
    'TAINT_EFFECT',
    taintEffectText,
    '',
    'also taint the node: NoSchedule (nothing new is scheduled there, as cordoning already does, but also not pods that tolerate a cordoned node) ' +
      'or NoExecute (and every pod without a matching toleration is evicted from it); empty: no taint, the node is only cordoned',
  ),
  taintKey: param('TAINT_KEY', taintKeyText, 'falco-response.io/compromised', 'the key of the taint; the node keeps every other taint'),
  taintValue: param('TAINT_VALUE', taintValueText, 'true', 'the value of the taint'),
  cordonControlPlane: param(
    'CORDON_CONTROL_PLANE',
    booleanText,
    'false',
    `true: control-plane nodes (labelled ${CONTROL_PLANE_LABELS.join(' or ')}) are cordoned too; false: they are left alone`,
  ),
  protectedNodes: param('PROTECTED_NODES', listText('node names', isDns1123Subdomain), '', 'nodes never cordoned, comma-separated'),
};
type CordonNodeParams = typeof parameters;
type CordonInput = ActionCheckInput<CordonNodeParams, 'node'>;

const controlPlane: Check<CordonInput> = {
  name: 'control-plane',
  description: `a control-plane node (labelled \`${CONTROL_PLANE_LABELS.join('` or `')}\`) is left alone unless \`CORDON_CONTROL_PLANE\` is true, code \`protected-node\`.`,
  check: ({ target, params }) => {
    const labels = target.found.metadata?.labels ?? {};
    const label = CONTROL_PLANE_LABELS.find((l) => l in labels);
    if (label === undefined || params.cordonControlPlane) return undefined;
    return {
      code: 'protected-node',
      reason: `${describeNode(target.node)} of ${describePod(target.pod)} is a control-plane node (labelled ${label}): it is left alone (CORDON_CONTROL_PLANE is false)`,
    };
  },
};

const protectedNodes: Check<CordonInput> = {
  name: 'protected-nodes',
  description: 'a node listed in `PROTECTED_NODES` is left alone, code `protected-node`.',
  check: ({ target, params }) =>
    params.protectedNodes.includes(target.node.name)
      ? { code: 'protected-node', reason: `${describeNode(target.node)} of ${describePod(target.pod)} is protected (PROTECTED_NODES): it is left alone` }
      : undefined,
};

/** What the node lacks of a cordon as configured; `patch` undefined when it lacks nothing. */
interface Plan {
  readonly cordon: boolean;
  /** The taint to add, or undefined when none is configured or the node carries it already. */
  readonly taint: NodeTaint | undefined;
  /** The taints of the node as read, kept: all but an earlier taint of ours of the same key and effect and another value. */
  readonly kept: readonly NodeTaint[];
  readonly patch: NodeSchedulingPatch | undefined;
}

function wantedTaint(params: ParamValues<CordonNodeParams>): NodeTaint | undefined {
  return params.taintEffect === undefined ? undefined : { key: params.taintKey, value: params.taintValue, effect: params.taintEffect };
}

function planCordon(found: V1Node, params: ParamValues<CordonNodeParams>): Plan {
  const cordon = found.spec?.unschedulable !== true;
  const existing: readonly NodeTaint[] = found.spec?.taints ?? [];
  const wanted = wantedTaint(params);
  // A node holds one taint per key and effect: ours with another value (TAINT_VALUE changed) is replaced, nothing else.
  const kept = wanted === undefined ? existing : existing.filter((e) => !(e.key === wanted.key && e.effect === wanted.effect && (e.value ?? '') !== wanted.value));
  const taint = wanted === undefined || existing.some((e) => e.key === wanted.key && e.effect === wanted.effect && (e.value ?? '') === wanted.value) ? undefined : wanted;
  if (!cordon && taint === undefined) return { cordon, taint, kept, patch: undefined };
  const uid = found.metadata?.uid ?? '';
  const resourceVersion = found.metadata?.resourceVersion;
  const patch: NodeSchedulingPatch = {
    // The resourceVersion only where the taints are written: a merge patch replaces the list, and must not replace one
    // that changed since it was read. Marking the node unschedulable alone overwrites nobody's change.
    metadata: { uid, ...(taint === undefined || resourceVersion === undefined ? {} : { resourceVersion }) },
    spec: { ...(cordon ? { unschedulable: true as const } : {}), ...(taint === undefined ? {} : { taints: [...kept, taint] }) },
  };
  return { cordon, taint, kept, patch };
}

/** `marked unschedulable; tainted falco-response.io/compromised=true:NoSchedule (2 other taints kept)`, as done or as it would be. */
function changeText(plan: Plan, params: ParamValues<CordonNodeParams>, would: boolean): string {
  const wanted = wantedTaint(params);
  const cordon = plan.cordon ? `${would ? 'would mark it' : 'marked'} unschedulable` : 'already unschedulable';
  if (wanted === undefined) return cordon;
  const others = plan.kept.length;
  const taint =
    plan.taint === undefined
      ? `already tainted ${taintText(wanted)}`
      : `${would ? 'would taint it' : 'tainted'} ${taintText(wanted)} (${others} other taint${others === 1 ? '' : 's'} kept)`;
  return `${cordon}; ${taint}`;
}

/** What becomes of the pods already on the node: cordoning leaves them running, a NoExecute taint does not. */
function runningPods(plan: Plan, params: ParamValues<CordonNodeParams>): string {
  return plan.taint !== undefined && params.taintEffect === 'NoExecute'
    ? 'Kubernetes evicts its pods that do not tolerate the taint'
    : 'its running pods were not evicted';
}

/** A 409 means the node changed since it was read (the kubelet, the node controller, an operator): read it again, a bounded number of times. */
const PATCH_ATTEMPTS = 5;

type Cordoned =
  | { readonly outcome: 'done'; readonly plan: Plan; readonly answerLost: boolean }
  | { readonly outcome: 'gone'; readonly reason: string };

/**
 * Cordons the node as planned from `found`, and on a 409 reads it again and plans again: a taint added meanwhile is
 * kept, and a node found cordoned as configured needs nothing more. `answerLost`: our own earlier attempt was carried out
 * and its answer lost, so the re-read finds it done; that is reported as this call's change, as delete-pod does.
 */
async function cordon(kube: Kube, node: NodeRef, first: V1Node, params: ParamValues<CordonNodeParams>, deadline: number): Promise<Cordoned> {
  const gone = { outcome: 'gone', reason: `${describeNode(node)} was deleted before it could be cordoned` } as const;
  let found = first;
  // The plan of a patch that may have been carried out although its retry met a 409: the next read tells.
  let lost: Plan | undefined;
  for (let attempt = 1; attempt <= PATCH_ATTEMPTS; attempt++) {
    const plan = planCordon(found, params);
    if (plan.patch === undefined) return lost === undefined ? { outcome: 'done', plan, answerLost: false } : { outcome: 'done', plan: lost, answerLost: true };
    const patched = await patchNodeScheduling(kube, node, plan.patch, deadline);
    if (patched.outcome === 'patched') return { outcome: 'done', plan, answerLost: false };
    if (patched.outcome === 'gone') return gone;
    if (patched.outcome === 'conflict') {
      lost = patched.ourOwn ? plan : undefined;
      const again = await getNode(kube, node, deadline);
      if (again === undefined) return gone;
      if (again.metadata?.uid === found.metadata?.uid) {
        found = again;
        continue;
      }
    }
    // A 422 on the uid, or a re-read that finds another uid: the name now holds another node.
    return {
      outcome: 'gone',
      reason: `${describeNode(node)} was replaced by a new node of the same name since it was read (uid ${describeValue(first.metadata?.uid ?? null)}): the new node is left alone`,
    };
  }
  throw new ActionFailedError(`${describeNode(node)} was not cordoned: it kept changing while it was written (the API server answered 409 Conflict ${PATCH_ATTEMPTS} times)`);
}

export default defineAction(NODE_TARGET, {
  name: 'cordon-node',
  description:
    'Cordons the node the pod named by the alert runs on (spec.unschedulable), optionally with a taint, so that nothing new is scheduled on a node that may be compromised; its running pods are not evicted (unless the taint is NoExecute).',
  // A container escape makes the node suspect; a shell in a container does not.
  guardDefaults: { rules: 'Detect release_agent File Container Escapes' },
  parameters,
  permissions: [
    { apiGroup: '', resource: 'nodes', verbs: ['get', 'patch'] },
    { apiGroup: '', resource: 'events', verbs: ['create'] },
  ],
  checks: [controlPlane, protectedNodes],
  async run({ target, params, kube, deadline, dryRun }) {
    const { node, pod } = target;
    const where = `${describeNode(node)} (the node of ${describePod(pod)})`;
    const touched = (changed: boolean): Touched[] => [{ kind: 'Node', name: node.name, changed }];
    const wanted = wantedTaint(params);
    // What this call changed (or would): marked it unschedulable, added the taint; and how many taints it kept.
    const factsOf = (plan: Plan) => ({
      cordoned: plan.cordon,
      taint: wanted === undefined ? null : taintText(wanted),
      tainted: plan.taint !== undefined,
      taintsKept: plan.kept.length,
    });
    const already = (plan: Plan) =>
      ({ status: 'done', message: `${where} is already cordoned (${changeText(plan, params, false)}): nothing to change`, touched: touched(false), facts: factsOf(plan) }) as const;
    if (dryRun) {
      const plan = planCordon(target.found, params);
      if (plan.patch === undefined) return already(plan);
      return { status: 'done', message: `would cordon ${where}: ${changeText(plan, params, true)}`, touched: touched(true), facts: { ...factsOf(plan), patch: plan.patch } };
    }
    const result = await cordon(kube, node, target.found, params, deadline);
    if (result.outcome === 'gone') return { status: 'skipped', code: 'node-gone', reason: result.reason };
    const { plan, answerLost } = result;
    if (plan.patch === undefined) return already(plan);
    const change = changeText(plan, params, false);
    const done = answerLost ? `${change} (the answer to an earlier attempt was lost, and the retry found the node so)` : change;
    return {
      status: 'done',
      message: `cordoned ${where}: ${done}; ${runningPods(plan, params)}`,
      touched: touched(true),
      audit: { reason: 'FalcoResponseCordoned', what: `cordoned the node '${node.name}' (${done})`, change: 'cordoned' },
      facts: factsOf(plan),
    };
  },
});

import { strict as assert } from 'assert';
import type { V1Pod } from '@kubernetes/client-node';
import deletePod from '../../functions/delete-pod/action';
import labelPod from '../../functions/label-pod/action';
import networkIsolate from '../../functions/network-isolate/action';
import forwarder from '../../functions/forwarder/router';
import type { PodAction } from '../../lib/action';
import { decodeEvent } from '../../lib/event';
import { MINIMUM_PRIORITY_CHECK, OPT_OUT_CHECK, PROTECTED_NAMESPACE_CHECK, RULES_CHECK, type CheckFailure, type Skip } from '../../lib/checks';
import { guardParams, type GuardSettings } from '../../lib/guards';
import { readParams, type ParamSpecs } from '../../lib/params';
import type { FalcoAlert } from '../../lib/alert';
import { namespaceName, objectName } from '../../lib/names';
import { podObject } from '../helpers/fake-cluster';
import { alert, kubelessEvent } from '../helpers/fixtures';
import { podActions } from '../helpers/pod-actions';

/**
 * The declared checks one by one (lib/checks.ts and each action's own): each says go (undefined) or skip with its
 * code and reason, exactly as the answer carries them. The runner runs them in the order the descriptor lists them.
 */

const guards = (env: Record<string, string> = {}): GuardSettings => readParams(guardParams({ rules: 'Terminal shell in container' }), env);
const decoded = (data: Record<string, any> = alert('terminal-shell')): FalcoAlert => decodeEvent(kubelessEvent(data).event).alert;
/** A pod's name as the target resolution checks it (lib/names.ts). */
const podRef = (namespace: string, name: string) => ({ namespace: namespaceName(namespace)!, name: objectName(name)! });
const POD = podRef('default', 'kubecon');
const podTarget = (found: unknown) => ({ kind: 'pod' as const, pod: POD, found: found as V1Pod });
const withRule = (rule: string) => ({ ...alert('terminal-shell'), rule });
const withPriority = (priority: string) => ({ ...alert('terminal-shell'), priority });
const inNamespace = (namespace: string) => ({ kind: 'pod' as const, pod: podRef(namespace, 'kubecon') });
const terminating = (since: string, grace: number) => {
  const pod = podObject('default', 'kubecon', { ownerKind: 'ReplicaSet' });
  return { ...pod, metadata: { ...pod.metadata, deletionTimestamp: since, deletionGracePeriodSeconds: grace } };
};

interface Case {
  readonly name: string;
  run(): Skip | CheckFailure | undefined;
  readonly expected: Skip | CheckFailure | undefined;
}

/** One check of an action, by its declared name, run on `input` decoded with the action's own parameters from `env`. */
function own<P extends ParamSpecs>(
  action: PodAction<P>,
  name: string,
  found: unknown,
  env: Record<string, string> = {},
  data?: Record<string, any>,
): () => Skip | CheckFailure | undefined {
  const check = action.ownChecks.find((c) => c.name === name);
  assert.ok(check, `${action.name} declares no check ${name}`);
  return () => check.check({ alert: decoded(data), target: podTarget(found), params: readParams(action.ownParameters, env), isProtectedNamespace: () => false, now: Date.now() });
}

const CASES: readonly Case[] = [
  { name: 'rules: a rule RULES lists goes on', run: () => RULES_CHECK.check({ alert: decoded(), guards: guards() }), expected: undefined },
  { name: "rules: '*' takes any rule", run: () => RULES_CHECK.check({ alert: decoded(withRule('Other')), guards: guards({ RULES: '*' }) }), expected: undefined },
  {
    name: 'rules: another rule is skipped, quoted',
    run: () => RULES_CHECK.check({ alert: decoded(withRule('Write below etc')), guards: guards() }),
    expected: { code: 'rule-not-selected', reason: 'the rule "Write below etc" is not one this action answers (RULES)' },
  },
  {
    name: 'minimum-priority: the minimum itself goes on',
    run: () => MINIMUM_PRIORITY_CHECK.check({ alert: decoded(withPriority('Warning')), guards: guards({ MINIMUM_PRIORITY: 'warning' }) }),
    expected: undefined,
  },
  {
    name: 'minimum-priority: below, by severity, is skipped',
    run: () => MINIMUM_PRIORITY_CHECK.check({ alert: decoded(withPriority('Notice')), guards: guards({ MINIMUM_PRIORITY: 'warning' }) }),
    expected: { code: 'priority-below-minimum', reason: 'the priority Notice is below the minimum Warning (MINIMUM_PRIORITY)' },
  },
  {
    name: 'protected-namespace: a namespace of PROTECTED_NAMESPACES is skipped',
    run: () => PROTECTED_NAMESPACE_CHECK.check({ ref: inNamespace('kube-system'), guards: guards(), ownNamespace: 'responders' }),
    expected: { code: 'protected-namespace', reason: "the namespace 'kube-system' is protected (PROTECTED_NAMESPACES): the pod 'kubecon' is left alone" },
  },
  {
    name: "protected-namespace: the function's own namespace is skipped",
    run: () => PROTECTED_NAMESPACE_CHECK.check({ ref: inNamespace('responders'), guards: guards(), ownNamespace: 'responders' }),
    expected: { code: 'protected-namespace', reason: "the namespace 'responders' is protected (PROTECTED_NAMESPACES): the pod 'kubecon' is left alone" },
  },
  {
    name: 'protected-namespace: any other goes on',
    run: () => PROTECTED_NAMESPACE_CHECK.check({ ref: inNamespace('default'), guards: guards(), ownNamespace: 'responders' }),
    expected: undefined,
  },
  {
    name: 'opted-out: the label set to "true" is skipped',
    run: () => OPT_OUT_CHECK.check({ target: podTarget(podObject('default', 'kubecon', { labels: { 'falco-response.io/ignore': 'true' } })), guards: guards() }),
    expected: { code: 'opted-out', reason: "the pod 'kubecon' in the namespace 'default' opted out with falco-response.io/ignore=true" },
  },
  {
    name: 'opted-out: the annotation under OPT_OUT_KEY is skipped',
    run: () =>
      OPT_OUT_CHECK.check({ target: podTarget(podObject('default', 'kubecon', { annotations: { 'example.com/hands-off': 'true' } })), guards: guards({ OPT_OUT_KEY: 'example.com/hands-off' }) }),
    expected: { code: 'opted-out', reason: "the pod 'kubecon' in the namespace 'default' opted out with example.com/hands-off=true" },
  },
  {
    name: 'opted-out: any other value goes on',
    run: () => OPT_OUT_CHECK.check({ target: podTarget(podObject('default', 'kubecon', { labels: { 'falco-response.io/ignore': 'yes' } })), guards: guards() }),
    expected: undefined,
  },
  {
    name: 'delete-pod skip-owner-kinds: a listed controller kind is skipped',
    run: own(deletePod, 'skip-owner-kinds', podObject('default', 'kubecon', { ownerKind: 'DaemonSet' }), { SKIP_OWNER_KINDS: 'DaemonSet' }),
    expected: { code: 'not-applicable', reason: "the pod 'kubecon' in the namespace 'default' is owned by a DaemonSet, which SKIP_OWNER_KINDS leaves alone" },
  },
  {
    name: "delete-pod skip-owner-kinds: 'none' skips a bare pod",
    run: own(deletePod, 'skip-owner-kinds', podObject('default', 'kubecon'), { SKIP_OWNER_KINDS: 'none' }),
    expected: { code: 'not-applicable', reason: "the pod 'kubecon' in the namespace 'default' is a bare pod, which SKIP_OWNER_KINDS leaves alone" },
  },
  {
    name: 'delete-pod skip-owner-kinds: another kind goes on',
    run: own(deletePod, 'skip-owner-kinds', podObject('default', 'kubecon', { ownerKind: 'ReplicaSet' }), { SKIP_OWNER_KINDS: 'DaemonSet,none' }),
    expected: undefined,
  },
  {
    name: 'delete-pod already-terminating: a deletion as fast as ours is left to finish',
    run: own(deletePod, 'already-terminating', terminating('2026-11-26T10:00:01Z', 1)),
    expected: {
      code: 'pod-gone',
      reason: "the pod 'kubecon' in the namespace 'default' is already being deleted (since 2026-11-26T10:00:01Z, grace period 1 s): deleting it again would not hasten it",
    },
  },
  {
    name: 'delete-pod already-terminating: a slower deletion goes on (our DELETE cuts it short)',
    run: own(deletePod, 'already-terminating', terminating('2026-11-26T10:00:01Z', 30)),
    expected: undefined,
  },
  {
    name: 'network-isolate host-network: a pod on the node’s network is skipped',
    run: own(networkIsolate, 'host-network', { ...podObject('default', 'kubecon'), spec: { hostNetwork: true, containers: [] } }),
    expected: {
      code: 'not-applicable',
      reason: "the pod 'kubecon' in the namespace 'default' uses the node's network (hostNetwork): no NetworkPolicy can isolate it, so it is not labelled as isolated",
    },
  },
  {
    name: 'network-isolate host-network: a pod on its own network goes on',
    run: own(networkIsolate, 'host-network', podObject('default', 'kubecon')),
    expected: undefined,
  },
  {
    name: 'label-pod nothing-to-write: a label the rule cannot make, and no annotations, leave nothing: skipped, saying why',
    run: own(labelPod, 'nothing-to-write', podObject('default', 'kubecon'), { LABELS: 'falco.org/rule={rule}', ANNOTATION_PREFIX: '' }, withRule('…')),
    expected: {
      code: 'not-applicable',
      reason:
        "nothing to write on the pod 'kubecon' in the namespace 'default'; the label falco.org/rule was left out: the alert's rule \"…\" holds no ASCII letter or digit to make a label value from",
    },
  },
  {
    name: 'label-pod nothing-to-write: labels to set go on',
    run: own(labelPod, 'nothing-to-write', podObject('default', 'kubecon')),
    expected: undefined,
  },
];

describe('the declared checks, one by one (lib/checks.ts and each action’s own)', () => {
  for (const c of CASES) {
    it(c.name, () => {
      assert.deepEqual(c.run(), c.expected);
    });
  }

  it('every action lists the shared checks, then its own, in the order the runner runs them', () => {
    const shared = ['test-event', 'rules', 'minimum-priority', 'source', 'target', 'protected-namespace', 'exists', 'opted-out'];
    const ownOf: Record<string, string[]> = {
      'capture-evidence': [],
      'delete-pod': ['skip-owner-kinds', 'already-terminating'],
      'label-pod': ['nothing-to-write'],
      'network-isolate': ['host-network'],
    };
    const actions = podActions();
    assert.deepEqual(actions.map((a) => a.name).sort(), Object.keys(ownOf));
    for (const action of actions) {
      assert.deepEqual(
        action.checks.map((c) => c.name),
        [...shared, ...(ownOf[action.name] ?? [])],
        action.name,
      );
      for (const c of action.checks) assert.ok(c.description.length > 20 && /`/.test(c.description), `${action.name} ${c.name}: ${c.description}`);
    }
    assert.deepEqual(
      forwarder.checks.map((c) => c.name),
      ['test-event'],
    );
  });
});

import action from '../../functions/delete-pod/action';
import { actionCases, GET, POD_PATH as POD, TARGET, type ActionCase } from '../helpers/action-cases';
import { podObject } from '../helpers/fake-cluster';
import { alert } from '../helpers/fixtures';

const inNamespace = (namespace: string) => {
  const a = alert('terminal-shell');
  a.output_fields['k8s.ns.name'] = namespace;
  return a;
};
const INVALID = 'invalid configuration: GRACE_PERIOD_SECONDS: expected a whole number from 0 to 3600, got "soon"';

const CASES: readonly ActionCase[] = [
  {
    title: "skips Falcosidekick's test event",
    env: { RULES: '*' },
    alert: alert('sidekick-test-event'),
    calls: [],
    answer: { status: 'skipped', code: 'test-event', reason: "Falcosidekick's test event: nothing to do" },
  },
  {
    title: 'skips alerts below MINIMUM_PRIORITY, comparing by severity',
    env: { MINIMUM_PRIORITY: 'warning' },
    alert: alert('terminal-shell-old-sidekick'),
    calls: [],
    answer: { status: 'skipped', code: 'priority-below-minimum', reason: 'the priority Notice is below the minimum Warning (MINIMUM_PRIORITY)' },
  },
  {
    title: 'skips host events and containers outside Kubernetes',
    alert: alert('terminal-shell-null-pod'),
    calls: [],
    answer: {
      status: 'skipped',
      code: 'no-pod',
      reason: 'the alert names no pod (k8s.ns.name is null, k8s.pod.name is null): a host event or a container outside Kubernetes',
    },
  },
  ...['kube-system', 'responders'].map(
    (namespace): ActionCase => ({
      title: `skips protected namespaces and the function’s own namespace: ${namespace}`,
      alert: inNamespace(namespace),
      calls: [],
      answer: {
        status: 'skipped',
        code: 'protected-namespace',
        reason: `the namespace '${namespace}' is protected (PROTECTED_NAMESPACES): the pod 'kubecon' is left alone`,
        target: { namespace, pod: 'kubecon' },
      },
    }),
  ),
  ...(['labels', 'annotations'] as const).map(
    (where): ActionCase => ({
      title: `reads the pod, then skips it when it opted out by ${where === 'labels' ? 'label' : 'annotation'}`,
      calls: [GET(POD, [200, podObject('default', 'kubecon', { [where]: { 'falco-response.io/ignore': 'true' } })])],
      answer: { status: 'skipped', code: 'opted-out', reason: "the pod 'kubecon' in the namespace 'default' opted out with falco-response.io/ignore=true", target: TARGET },
    }),
  ),
  {
    title: 'answers 500 on every call when its configuration is invalid, and says so once at start',
    env: { GRACE_PERIOD_SECONDS: 'soon' },
    deliveries: 2,
    calls: [],
    answers: [
      { status: 'failed', error: INVALID },
      { status: 'failed', error: INVALID },
    ],
    atStart: [
      {
        level: 'warn',
        message: 'no shared secret: every caller is accepted (the Secret or its key does not exist)',
        variable: 'INBOUND_SECRET',
        secret: 'falco-response-shared-secret',
      },
      { level: 'error', message: 'the function cannot start: every call will fail until the configuration is fixed', error: INVALID },
    ],
  },
];

describe('the shared guards (no Kubernetes call before they pass)', () => {
  actionCases(action, CASES, { ownNamespace: 'responders' });
});

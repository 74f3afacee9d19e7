import { strict as assert } from 'assert';
import action from '../../functions/network-isolate/action';
import { canonicalSpec, cidrProblem, sameSpec } from '../../functions/network-isolate/policy';
import { actionCases, alertHandled, auditEvent, configurationProblem, EVENTS_PATH as EVENTS, GET, PATCH, POD_PATH as POD, POST, PUT, repeat, RESET, settledAnswer, STORED, TARGET, type ActionCase } from '../helpers/action-cases';
import { podObject, status } from '../helpers/fake-cluster';

const POLICIES = '/apis/networking.k8s.io/v1/namespaces/default/networkpolicies';
const POLICY = `${POLICIES}/falco-response-quarantine`;
const MERGE_PATCH = 'application/merge-patch+json';
const UUID = '3c5d0a84-4b7e-4f44-9a21-2f0cbb4f8e11';
const QUARANTINE = 'falco-response.io/quarantine';
const NOT_FOUND = status(404, 'NotFound', 'not found');
const EXISTS = status(409, 'AlreadyExists', 'networkpolicies.networking.k8s.io "falco-response-quarantine" already exists');
const IN_PLACE = "the NetworkPolicy 'falco-response-quarantine' is as configured";

/** What the answer's details say was touched (lib/runner.ts): the namespace's policy, then the pod. */
const touched = (policyChanged: boolean, podChanged: boolean, policy = 'falco-response-quarantine') => [
  { kind: 'NetworkPolicy', namespace: 'default', name: policy, changed: policyChanged },
  { kind: 'Pod', namespace: 'default', name: 'kubecon', changed: podChanged },
];

/** The policy network-isolate sends with the default configuration: deny all ingress and egress. */
function wantedPolicy(spec: Record<string, unknown> = {}) {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: {
      name: 'falco-response-quarantine',
      namespace: 'default',
      labels: { 'app.kubernetes.io/managed-by': 'falco-response' },
      annotations: {
        'falco-response.io/description':
          'Cuts off every pod labelled falco-response.io/quarantine=true; written by the network-isolate function, which restores it when it drifts',
      },
    },
    spec: { podSelector: { matchLabels: { [QUARANTINE]: 'true' } }, policyTypes: ['Ingress', 'Egress'], ...spec },
  };
}

/** The policy as the API server returns it once stored: system fields added, empty lists dropped. */
function storedPolicy(spec: Record<string, unknown> = {}, resourceVersion = '4242') {
  const policy = wantedPolicy(spec);
  return {
    ...policy,
    metadata: { ...policy.metadata, uid: 'policy-uid', resourceVersion, generation: 1, creationTimestamp: '2023-05-25T13:44:06Z' },
  };
}

const labelPatch = { metadata: { uid: 'uid-kubecon', labels: { [QUARANTINE]: 'true' } } };
const pod = () => podObject('default', 'kubecon');
const quarantinedPod = () => podObject('default', 'kubecon', { ownerKind: 'ReplicaSet', labels: { app: 'web', [QUARANTINE]: 'true' } });
const isolatedEvent = (message: string) => auditEvent('FalcoResponseIsolated', message, 'falco-response/network-isolate');

/** Someone opened the quarantine to every source and added a label of their own; restoring it keeps the label. */
const drifted = storedPolicy({ ingress: [{}] }, '777');
drifted.metadata.labels = { ...drifted.metadata.labels, team: 'sre' } as typeof drifted.metadata.labels;
const restored = { ...drifted, spec: wantedPolicy().spec };

const refusal =
  'networkpolicies.networking.k8s.io is forbidden: User "system:serviceaccount:falco-response:network-isolate" cannot create resource "networkpolicies" in API group "networking.k8s.io" in the namespace "default"';
const peers = [
  { ipBlock: { cidr: '10.20.0.0/16' } },
  { ipBlock: { cidr: 'fd00::/8' } },
  { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'forensics' } } },
];
const allowances = wantedPolicy({
  ingress: [{ from: peers }],
  egress: [
    {
      to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
      ports: [
        { protocol: 'UDP', port: 53 },
        { protocol: 'TCP', port: 53 },
      ],
    },
    { to: peers },
  ],
});
const hostNetworkPod = { ...pod(), spec: { ...pod().spec, hostNetwork: true } };

/** The answer of an isolation: its message, the policy's step, whether the pod was labelled. */
const ALREADY = `the pod 'kubecon' in the namespace 'default' is already isolated: ${IN_PLACE} and the pod carries ${QUARANTINE}=true`;
/** The answer for a pod already isolated: nothing read was changed, no Event. */
const alreadyIsolated = {
  status: 'done',
  action: 'network-isolate',
  target: TARGET,
  dryRun: false,
  message: ALREADY,
  details: { touched: touched(false, false), policy: 'falco-response-quarantine', policyStep: 'unchanged', labelled: false, changed: false, eventRecorded: false },
};
const LABELLED_ONLY = `isolated the pod 'kubecon' in the namespace 'default': ${IN_PLACE}; labelled the pod ${QUARANTINE}=true`;

const CASES: readonly ActionCase[] = [
  {
    title: 'first isolation: creates the policy, then labels the pod, then records an Event',
    calls: [
      GET(POD, [200, podObject('default', 'kubecon', { ownerKind: 'ReplicaSet' })]),
      GET(POLICY, [404, status(404, 'NotFound', 'networkpolicies.networking.k8s.io "falco-response-quarantine" not found')]),
      POST(POLICIES, [201, storedPolicy()], { body: wantedPolicy(), contentType: 'application/json' }),
      PATCH(POD, [200, quarantinedPod()], { body: labelPatch, contentType: MERGE_PATCH }),
      POST(EVENTS, STORED, {
        body: isolatedEvent(
          `network-isolate isolated the pod (created the NetworkPolicy 'falco-response-quarantine'; labelled the pod ${QUARANTINE}=true) ` +
            `after the Falco rule "Terminal shell in container" (priority Critical, alert uuid ${UUID})`,
        ),
      }),
    ],
    answer: {
      status: 'done',
      action: 'network-isolate',
      target: TARGET,
      dryRun: false,
      message: `isolated the pod 'kubecon' in the namespace 'default': created the NetworkPolicy 'falco-response-quarantine'; labelled the pod ${QUARANTINE}=true`,
      details: { touched: touched(true, true), policy: 'falco-response-quarantine', policyStep: 'created', labelled: true, changed: true, eventRecorded: 'queued' },
    },
  },
  {
    title: 'repeated isolation within SETTLED_SECONDS: of ten alerts for an isolated pod, the first reads the pod and the policy, the nine others are answered settled',
    deliveries: 10,
    calls: [GET(POD, [200, quarantinedPod()]), GET(POLICY, [200, storedPolicy()])],
    answers: [
      alreadyIsolated,
      ...Array.from({ length: 9 }, () => settledAnswer('network-isolate', 'event-0')),
    ],
  },
  {
    title: 'repeated isolation with SETTLED_SECONDS 0: ten alerts for an isolated pod read the policy and write nothing',
    env: { SETTLED_SECONDS: '0' },
    deliveries: 10,
    calls: repeat(10, [GET(POD, [200, quarantinedPod()]), GET(POLICY, [200, storedPolicy()])]),
    answers: Array.from({ length: 10 }, () => alreadyIsolated),
  },
  {
    title: 'a second pod of the namespace: the policy is there, only the label is written',
    calls: [
      GET(POD, [200, pod()]),
      GET(POLICY, [200, storedPolicy()]),
      PATCH(POD, [200, pod()], { body: labelPatch, contentType: MERGE_PATCH }),
      POST(EVENTS, STORED),
    ],
    answer: {
      status: 'done',
      action: 'network-isolate',
      target: TARGET,
      dryRun: false,
      message: LABELLED_ONLY,
      details: { touched: touched(false, true), policy: 'falco-response-quarantine', policyStep: 'unchanged', labelled: true, changed: true, eventRecorded: 'queued' },
    },
  },
  {
    // No pod patch: the pod carried the label already
    title: 'drifted policy: puts it back with PUT and the resourceVersion read, keeping what else is on the object',
    calls: [
      GET(POD, [200, quarantinedPod()]),
      GET(POLICY, [200, drifted]),
      PUT(POLICY, [200, storedPolicy({}, '778')], { body: restored, contentType: 'application/json' }),
      POST(EVENTS, STORED, {
        body: isolatedEvent(
          "network-isolate isolated the pod (restored the NetworkPolicy 'falco-response-quarantine' (it had drifted from its configuration); " +
            `the pod already carried ${QUARANTINE}=true) after the Falco rule "Terminal shell in container" (priority Critical, alert uuid ${UUID})`,
        ),
      }),
    ],
    answer: {
      status: 'done',
      action: 'network-isolate',
      target: TARGET,
      dryRun: false,
      message:
        "isolated the pod 'kubecon' in the namespace 'default': restored the NetworkPolicy 'falco-response-quarantine' (it had drifted from its configuration); " +
        `the pod already carried ${QUARANTINE}=true`,
      details: { touched: touched(true, false), policy: 'falco-response-quarantine', policyStep: 'restored', labelled: false, changed: true, eventRecorded: 'queued' },
    },
  },
  {
    // No PATCH of the pod is sent, and the answer is a 500 naming the cause
    title: 'policy creation failing: the pod is not labelled and the failure says why',
    calls: [GET(POD, [200, pod()]), GET(POLICY, [404, NOT_FOUND]), POST(POLICIES, [403, status(403, 'Forbidden', refusal)])],
    answer: {
      status: 'failed',
      error:
        `the pod 'kubecon' in the namespace 'default' was not isolated and not labelled ${QUARANTINE}=true, because the NetworkPolicy ` +
        "'falco-response-quarantine' in the namespace 'default' could not be put in place: create the NetworkPolicy 'falco-response-quarantine' " +
        `in the namespace 'default' failed: the API server answered 403 Forbidden: ${refusal} (the function's ServiceAccount lacks the permission ` +
        "'create' on 'networkpolicies.networking.k8s.io': declare it in the action's permissions and apply the regenerated ClusterRole from manifests/)",
      target: TARGET,
    },
  },
  {
    title: '409 on create (a concurrent alert created it first): reads it and carries on',
    calls: [
      GET(POD, [200, pod()]),
      GET(POLICY, [404, NOT_FOUND]),
      POST(POLICIES, [409, EXISTS], { body: wantedPolicy() }),
      GET(POLICY, [200, storedPolicy()]),
      PATCH(POD, [200, pod()], { body: labelPatch, contentType: MERGE_PATCH }),
      POST(EVENTS, STORED),
    ],
    answer: {
      status: 'done',
      action: 'network-isolate',
      target: TARGET,
      dryRun: false,
      message: LABELLED_ONLY,
      details: { touched: touched(false, true), policy: 'falco-response-quarantine', policyStep: 'unchanged', labelled: true, changed: true, eventRecorded: 'queued' },
    },
  },
  {
    title: "a create whose answer was lost, retried into 409: reports the policy as this call's creation",
    calls: [
      GET(POD, [200, pod()]),
      GET(POLICY, [404, NOT_FOUND]),
      POST(POLICIES, RESET, { body: wantedPolicy() }),
      POST(POLICIES, [409, EXISTS], { body: wantedPolicy() }),
      GET(POLICY, [200, storedPolicy()]),
      PATCH(POD, [200, pod()], { body: labelPatch }),
      POST(EVENTS, STORED),
    ],
    answer: {
      status: 'done',
      action: 'network-isolate',
      target: TARGET,
      dryRun: false,
      message:
        "isolated the pod 'kubecon' in the namespace 'default': created the NetworkPolicy 'falco-response-quarantine' " +
        `(the answer to an earlier attempt was lost, and the retry found it in place); labelled the pod ${QUARANTINE}=true`,
      details: { touched: touched(true, true), policy: 'falco-response-quarantine', policyStep: 'created', labelled: true, changed: true, eventRecorded: 'queued' },
    },
  },
  {
    title: '409 on replace (changed again since read): reads it again and restores it',
    calls: [
      GET(POD, [200, quarantinedPod()]),
      GET(POLICY, [200, storedPolicy({ ingress: [{}] }, '10')]),
      PUT(POLICY, [409, status(409, 'Conflict', 'the object has been modified; please apply your changes to the latest version and try again')]),
      GET(POLICY, [200, storedPolicy({ egress: [{}] }, '11')]),
      PUT(POLICY, [200, storedPolicy({}, '12')], { body: (body: any) => body.metadata.resourceVersion === '11' && body.spec.egress === undefined }),
      POST(EVENTS, STORED),
    ],
    answer: {
      status: 'done',
      action: 'network-isolate',
      target: TARGET,
      dryRun: false,
      message:
        "isolated the pod 'kubecon' in the namespace 'default': restored the NetworkPolicy 'falco-response-quarantine' (it had drifted from its configuration); " +
        `the pod already carried ${QUARANTINE}=true`,
      details: { touched: touched(true, false), policy: 'falco-response-quarantine', policyStep: 'restored', labelled: false, changed: true, eventRecorded: 'queued' },
    },
  },
  {
    title: 'writes the allowances it is configured with: DNS to kube-dns, CIDRs and namespaces, both ways',
    env: { ALLOW_DNS: 'true', ALLOW_CIDRS: '10.20.0.0/16, fd00::/8', ALLOW_NAMESPACES: 'forensics' },
    calls: [
      GET(POD, [200, pod()]),
      GET(POLICY, [404, NOT_FOUND]),
      POST(POLICIES, [201, storedPolicy()], { body: allowances }),
      PATCH(POD, [200, pod()], { body: labelPatch }),
      POST(EVENTS, STORED),
    ],
    answer: {
      status: 'done',
      action: 'network-isolate',
      target: TARGET,
      dryRun: false,
      message: `isolated the pod 'kubecon' in the namespace 'default': created the NetworkPolicy 'falco-response-quarantine'; labelled the pod ${QUARANTINE}=true`,
      details: { touched: touched(true, true), policy: 'falco-response-quarantine', policyStep: 'created', labelled: true, changed: true, eventRecorded: 'queued' },
    },
  },
  {
    title: 'uses the configured label key and policy name',
    env: { QUARANTINE_LABEL: 'example.com/isolated', POLICY_NAME: 'quarantine' },
    calls: [
      GET(POD, [200, pod()]),
      GET(`${POLICIES}/quarantine`, [404, NOT_FOUND]),
      POST(POLICIES, [201, { ...storedPolicy(), metadata: { ...storedPolicy().metadata, name: 'quarantine' } }], {
        body: (body: any) => body.metadata.name === 'quarantine' && body.spec.podSelector.matchLabels['example.com/isolated'] === 'true',
      }),
      PATCH(POD, [200, pod()], { body: { metadata: { uid: 'uid-kubecon', labels: { 'example.com/isolated': 'true' } } } }),
      POST(EVENTS, STORED),
    ],
    answer: {
      status: 'done',
      action: 'network-isolate',
      target: TARGET,
      dryRun: false,
      message: "isolated the pod 'kubecon' in the namespace 'default': created the NetworkPolicy 'quarantine'; labelled the pod example.com/isolated=true",
      details: { touched: touched(true, true, 'quarantine'), policy: 'quarantine', policyStep: 'created', labelled: true, changed: true, eventRecorded: 'queued' },
    },
  },
  {
    title: 'in dry-run mode reads the pod and the policy and says what it would do, writing nothing',
    env: { DRY_RUN: 'true' },
    calls: [GET(POD, [200, pod()]), GET(POLICY, [404, NOT_FOUND])],
    answer: {
      status: 'done',
      action: 'network-isolate',
      target: TARGET,
      dryRun: true,
      message: `would isolate the pod 'kubecon' in the namespace 'default': would create the NetworkPolicy 'falco-response-quarantine'; would label the pod ${QUARANTINE}=true`,
      details: { touched: touched(true, true), policy: 'falco-response-quarantine', policyStep: 'created', labelled: true, changed: true, eventRecorded: false },
    },
  },
  {
    title: 'leaves a hostNetwork pod unlabelled: no NetworkPolicy can isolate it',
    calls: [GET(POD, [200, hostNetworkPod])],
    answer: {
      status: 'skipped',
      code: 'not-applicable',
      reason: "the pod 'kubecon' in the namespace 'default' uses the node's network (hostNetwork): no NetworkPolicy can isolate it, so it is not labelled as isolated",
      target: TARGET,
    },
  },
  {
    title: 'answers "pod gone" when the pod is deleted before it is labelled',
    calls: [GET(POD, [200, pod()]), GET(POLICY, [200, storedPolicy()]), PATCH(POD, [404, status(404, 'NotFound', 'pods "kubecon" not found')])],
    answer: {
      status: 'skipped',
      code: 'pod-gone',
      reason: `the pod 'kubecon' in the namespace 'default' was deleted before it could be labelled ${QUARANTINE}=true (${IN_PLACE})`,
      target: TARGET,
    },
  },
  {
    title: 'leaves a new pod that took the name alone: the uid in the patch is refused (422)',
    calls: [
      GET(POD, [200, pod()]),
      GET(POLICY, [200, storedPolicy()]),
      PATCH(POD, [422, status(422, 'Invalid', 'Pod "kubecon" is invalid: metadata.uid: Invalid value: "uid-kubecon": field is immutable')], { body: labelPatch }),
    ],
    answer: {
      status: 'skipped',
      code: 'pod-gone',
      reason:
        "the pod 'kubecon' in the namespace 'default' was replaced by a new pod of the same name since it was inspected (uid uid-kubecon): " +
        `the new pod is left alone (${IN_PLACE})`,
      target: TARGET,
    },
  },
  {
    title: 'still reports the isolation when the audit Event cannot be recorded',
    calls: [
      GET(POD, [200, pod()]),
      GET(POLICY, [200, storedPolicy()]),
      PATCH(POD, [200, pod()]),
      ...repeat(4, [POST(EVENTS, [500, status(500, 'InternalError', 'etcd is down')])]),
    ],
    answer: {
      status: 'done',
      action: 'network-isolate',
      target: TARGET,
      dryRun: false,
      message: LABELLED_ONLY,
      details: { touched: touched(false, true), policy: 'falco-response-quarantine', policyStep: 'unchanged', labelled: true, changed: true, eventRecorded: 'queued' },
    },
    // the answer comes first and says the Event is queued; the warning follows it, naming the call
    log: [
      alertHandled('info', { outcome: 'done', result: LABELLED_ONLY, dryRun: false }),
      {
        level: 'warn',
        message: 'the pod was isolated but the audit event could not be recorded',
        error: "create an event about the pod 'kubecon' in the namespace 'default' failed: the API server answered 500 InternalError: etcd is down (after 4 attempt(s))",
        eventId: '6f1d3c9e-1b7a-4c2d-9e8f-0a1b2c3d4e5f',
        target: { namespace: 'default', name: 'kubecon' },
      },
    ],
  },
];

describe('network-isolate', () => {
  actionCases(action, CASES);

  describe('configuration', () => {
    const problem = (env: Record<string, string>) => configurationProblem(action.parameters, env);

    it('names every bad CIDR and why', () => {
      assert.equal(
        problem({ ALLOW_CIDRS: '10.0.0.0/8,10.0.0.1/8,10.0.0.0,300.1.1.1/32,010.0.0.0/8,10.0.0.0/33,fd00::1/8,fe80::/129,fe80::%eth0/64,example.com/24' }),
        'invalid configuration: ALLOW_CIDRS: expected a comma-separated list of CIDRs such as 10.0.0.0/8 or fd00::/8 (' +
          '"10.0.0.1/8" has bits set past its prefix length; "10.0.0.0" has no /prefix length; ' +
          '"300.1.1.1/32" is not an IPv4 or IPv6 address with a /prefix length; "010.0.0.0/8" is not an IPv4 or IPv6 address with a /prefix length; ' +
          '"10.0.0.0/33" has an IPv4 prefix length above 32; "fd00::1/8" has bits set past its prefix length; ' +
          '"fe80::/129" has an IPv6 prefix length that is not 0 to 128; "fe80::%eth0/64" is not an IPv4 or IPv6 address with a /prefix length; ' +
          '"example.com/24" is not an IPv4 or IPv6 address with a /prefix length), ' +
          // the value read is quoted cut short, as every received value is
          'got "10.0.0.0/8,10.0.0.1/8,10.0.0.0,300.1.1.1/32,010.0.0.0/8,10.0.0.0/33,fd00::1/8,f… (120 characters)',
      );
    });

    it('refuses a bad label key, a controller key, a bad policy name and a bad namespace', () => {
      assert.equal(
        problem({ QUARANTINE_LABEL: 'pod-template-hash', POLICY_NAME: 'Quarantine!', ALLOW_NAMESPACES: 'ok,Not_OK' }),
        'invalid configuration: QUARANTINE_LABEL: expected a label key that no controller sets or selects on ("pod-template-hash" is one), got "pod-template-hash"; ' +
          "POLICY_NAME: expected a NetworkPolicy name (lowercase letters, digits, '-' and '.', at most 253), got \"Quarantine!\"; " +
          'ALLOW_NAMESPACES: expected a comma-separated list of namespace names ("Not_OK" is not one), got "ok,Not_OK"',
      );
    });
  });

  describe('cidrProblem', () => {
    for (const cidr of ['0.0.0.0/0', '10.0.0.0/8', '192.168.1.128/25', '192.168.1.7/32', '::/0', 'fd00::/8', '2001:db8::/32', '2001:db8:0:0:0:0:0:1/128', '::ffff:10.0.0.0/104']) {
      it(`takes ${cidr}`, () => assert.equal(cidrProblem(cidr), undefined));
    }
    for (const cidr of ['192.168.1.129/25', '2001:db8::1/64', '::ffff:10.0.0.1/104']) {
      it(`refuses ${cidr}: bits past the prefix`, () => assert.equal(cidrProblem(cidr), 'has bits set past its prefix length'));
    }
  });

  describe('sameSpec: the comparison that decides whether to write', () => {
    const wanted = wantedPolicy({
      ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8' } }, { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'x' } } }] }],
      egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/8' } }], ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }] }],
    }).spec as any;

    it('ignores what the API server fills in or drops, and the order of peers, ports and rules', () => {
      const served = {
        podSelector: { matchLabels: { [QUARANTINE]: 'true' }, matchExpressions: [] },
        policyTypes: ['Egress', 'Ingress'],
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'x' } } }, { ipBlock: { cidr: '10.0.0.0/8', except: [] } }] }],
        egress: [{ ports: [{ port: 53 }, { protocol: 'UDP', port: 53 }], to: [{ ipBlock: { cidr: '10.0.0.0/8' } }] }],
      };
      assert.ok(sameSpec(served, wanted));
      assert.ok(sameSpec({ podSelector: {}, policyTypes: ['Ingress'], ingress: [] }, { podSelector: {} }));
    });

    it('sees every change in what is allowed', () => {
      const changes: [string, unknown][] = [
        ['an allow-all ingress rule', { ...wanted, ingress: [...wanted.ingress, {}] }],
        ['a rule with an empty peer list (every source)', { ...wanted, ingress: [{ from: [] }] }],
        ['every namespace instead of the policy one', { ...wanted, ingress: [{ from: [{ namespaceSelector: {} }] }] }],
        ['another port', { ...wanted, egress: [{ ...wanted.egress[0], ports: [{ protocol: 'TCP', port: 54 }] }] }],
        ['Egress no longer a type', { ...wanted, policyTypes: ['Ingress'] }],
        ['another selector', { ...wanted, podSelector: { matchLabels: { [QUARANTINE]: 'false' } } }],
        ['every pod of the namespace', { ...wanted, podSelector: {} }],
      ];
      for (const [what, spec] of changes) assert.ok(!sameSpec(spec as any, wanted), what);
    });

    it('gives equal text for equal meaning, whatever the key order', () => {
      assert.equal(canonicalSpec({ policyTypes: ['Ingress'], podSelector: { matchLabels: { b: '1', a: '2' } } }), canonicalSpec({ podSelector: { matchLabels: { a: '2', b: '1' } } }));
    });
  });
});

import { strict as assert } from 'assert';
import type nock from 'nock';
import action from '../../functions/network-isolate/action';
import { canonicalSpec, cidrProblem, sameSpec } from '../../functions/network-isolate/policy';
import { ConfigurationError, readParams } from '../../lib/params';
import { eventStored, fakeApi, handlerFor, podObject, status } from '../helpers/fake-cluster';
import { alert, kubelessContext, kubelessEvent } from '../helpers/fixtures';

const POD = '/api/v1/namespaces/default/pods/kubecon';
const EVENTS = '/api/v1/namespaces/default/events';
const POLICIES = '/apis/networking.k8s.io/v1/namespaces/default/networkpolicies';
const POLICY = `${POLICIES}/falco-response-quarantine`;
const MERGE_PATCH = 'application/merge-patch+json';
const UUID = '3c5d0a84-4b7e-4f44-9a21-2f0cbb4f8e11';
const QUARANTINE = 'falco-response.io/quarantine';

const handlerWith = (env: Record<string, string> = {}) => handlerFor(action, env);

/** What the answer's details say was touched (lib/runner.ts): the namespace's policy, then the pod. */
const isolation = (policyChanged: boolean, podChanged: boolean) => ({
  touched: [
    { kind: 'NetworkPolicy', namespace: 'default', name: 'falco-response-quarantine', changed: policyChanged },
    { kind: 'Pod', namespace: 'default', name: 'kubecon', changed: podChanged },
  ],
});

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
const quarantinedPod = () => podObject('default', 'kubecon', { ownerKind: 'ReplicaSet', labels: { app: 'web', [QUARANTINE]: 'true' } });

/** Every request the scope answers, in order: the order is part of the contract (policy first, then the label). */
function recorded(scope: nock.Scope): string[] {
  const calls: string[] = [];
  scope.on('request', (req: { method: string; path: string }) => calls.push(`${req.method} ${req.path}`));
  return calls;
}

function isolatedEvent(message: string) {
  return (body: any) => {
    assert.equal(body.reason, 'FalcoResponseIsolated');
    assert.deepEqual(body.involvedObject, { apiVersion: 'v1', kind: 'Pod', name: 'kubecon', namespace: 'default', uid: 'uid-kubecon' });
    assert.equal(body.source.component, 'falco-response/network-isolate');
    assert.equal(body.message, message);
    return true;
  };
}

describe('network-isolate', () => {
  it('first isolation: creates the policy, then labels the pod, then records an Event', async () => {
    // Given
    const api = fakeApi()
      .get(POD)
      .reply(200, podObject('default', 'kubecon', { ownerKind: 'ReplicaSet' }))
      .get(POLICY)
      .reply(404, status(404, 'NotFound', 'networkpolicies.networking.k8s.io "falco-response-quarantine" not found'))
      .post(POLICIES, wantedPolicy())
      .matchHeader('content-type', 'application/json')
      .reply(201, storedPolicy())
      .patch(POD, labelPatch)
      .matchHeader('content-type', MERGE_PATCH)
      .reply(200, quarantinedPod())
      .post(
        EVENTS,
        isolatedEvent(
          `network-isolate isolated the pod (created the NetworkPolicy 'falco-response-quarantine'; labelled the pod ${QUARANTINE}=true) ` +
            `after the Falco rule "Terminal shell in container" (priority Critical, alert uuid ${UUID})`,
        ),
      )
      .reply(201, (_uri, body) => eventStored(body));
    const calls = recorded(api);
    const { handler } = handlerWith();
    const { event, response } = kubelessEvent(alert('terminal-shell'));

    // When
    const answer = await handler(event, kubelessContext());

    // Then
    api.done();
    assert.deepEqual(calls, [`GET ${POD}`, `GET ${POLICY}`, `POST ${POLICIES}`, `PATCH ${POD}`, `POST ${EVENTS}`]);
    assert.equal(response.statusCode, 200);
    assert.deepEqual(answer, {
      status: 'done',
      action: 'network-isolate',
      target: { namespace: 'default', pod: 'kubecon' },
      dryRun: false,
      message: `isolated the pod 'kubecon' in the namespace 'default': created the NetworkPolicy 'falco-response-quarantine'; labelled the pod ${QUARANTINE}=true`,
      details: { ...isolation(true, true), policy: 'falco-response-quarantine', policyStep: 'created', labelled: true, changed: true, eventRecorded: 'queued' },
    });
  });

  it('repeated isolation: ten alerts for an isolated pod read the policy and write nothing', async () => {
    // Given
    const api = fakeApi().get(POD).times(10).reply(200, quarantinedPod()).get(POLICY).times(10).reply(200, storedPolicy());
    const calls = recorded(api);
    const { handler } = handlerWith();

    // When
    const answers = [];
    // Ten alerts, each with its own event-id as Falcosidekick sends them (one event-id twice is a repeat: lib/repeats.ts).
    for (let i = 0; i < 10; i++) answers.push(await handler(kubelessEvent(alert('terminal-shell'), `event-${i}`).event, kubelessContext()));

    // Then
    api.done();
    assert.ok(calls.every((c) => c.startsWith('GET ')), calls.join(', '));
    for (const answer of answers) {
      assert.equal(
        answer.message,
        `the pod 'kubecon' in the namespace 'default' is already isolated: the NetworkPolicy 'falco-response-quarantine' is as configured and the pod carries ${QUARANTINE}=true`,
      );
      assert.deepEqual(answer.details, { ...isolation(false, false), policy: 'falco-response-quarantine', policyStep: 'unchanged', labelled: false, changed: false, eventRecorded: false });
    }
  });

  it('a second pod of the namespace: the policy is there, only the label is written', async () => {
    const api = fakeApi()
      .get(POD)
      .reply(200, podObject('default', 'kubecon'))
      .get(POLICY)
      .reply(200, storedPolicy())
      .patch(POD, labelPatch)
      .matchHeader('content-type', MERGE_PATCH)
      .reply(200, podObject('default', 'kubecon'))
      .post(EVENTS)
      .reply(201, (_uri, body) => eventStored(body));
    const { handler } = handlerWith();

    const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());

    api.done();
    assert.equal(
      answer.message,
      `isolated the pod 'kubecon' in the namespace 'default': the NetworkPolicy 'falco-response-quarantine' is as configured; labelled the pod ${QUARANTINE}=true`,
    );
  });

  it('drifted policy: puts it back with PUT and the resourceVersion read, keeping what else is on the object', async () => {
    // Given: someone opened the quarantine to every source and added a label of their own
    const drifted = storedPolicy({ ingress: [{}] }, '777');
    drifted.metadata.labels = { ...drifted.metadata.labels, team: 'sre' } as typeof drifted.metadata.labels;
    const restored = { ...drifted, spec: wantedPolicy().spec };
    const api = fakeApi()
      .get(POD)
      .reply(200, quarantinedPod())
      .get(POLICY)
      .reply(200, drifted)
      .put(POLICY, (body: any) => {
        assert.deepEqual(body, restored);
        assert.equal(body.metadata.resourceVersion, '777');
        return true;
      })
      .matchHeader('content-type', 'application/json')
      .reply(200, storedPolicy({}, '778'))
      .post(
        EVENTS,
        isolatedEvent(
          "network-isolate isolated the pod (restored the NetworkPolicy 'falco-response-quarantine' (it had drifted from its configuration); " +
            `the pod already carried ${QUARANTINE}=true) after the Falco rule "Terminal shell in container" (priority Critical, alert uuid ${UUID})`,
        ),
      )
      .reply(201, (_uri, body) => eventStored(body));
    const { handler } = handlerWith();

    // When
    const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());

    // Then: no pod patch, the pod carried the label already
    api.done();
    assert.equal(
      answer.message,
      "isolated the pod 'kubecon' in the namespace 'default': restored the NetworkPolicy 'falco-response-quarantine' (it had drifted from its configuration); " +
        `the pod already carried ${QUARANTINE}=true`,
    );
    assert.equal((answer.details as any).policyStep, 'restored');
  });

  it('policy creation failing: the pod is not labelled and the failure says why', async () => {
    // Given
    const refusal =
      'networkpolicies.networking.k8s.io is forbidden: User "system:serviceaccount:falco-response:network-isolate" cannot create resource "networkpolicies" in API group "networking.k8s.io" in the namespace "default"';
    const api = fakeApi()
      .get(POD)
      .reply(200, podObject('default', 'kubecon'))
      .get(POLICY)
      .reply(404, status(404, 'NotFound', 'not found'))
      .post(POLICIES)
      .reply(403, status(403, 'Forbidden', refusal));
    const calls = recorded(api);
    const { handler } = handlerWith();
    const { event, response } = kubelessEvent(alert('terminal-shell'));

    // When
    const answer = await handler(event, kubelessContext());

    // Then: no PATCH of the pod was sent (strict nock would have refused it), and the answer is a 500 naming the cause
    api.done();
    assert.deepEqual(calls, [`GET ${POD}`, `GET ${POLICY}`, `POST ${POLICIES}`]);
    assert.equal(response.statusCode, 500);
    assert.deepEqual(answer, {
      status: 'failed',
      error:
        `the pod 'kubecon' in the namespace 'default' was not isolated and not labelled ${QUARANTINE}=true, because the NetworkPolicy ` +
        "'falco-response-quarantine' in the namespace 'default' could not be put in place: create the NetworkPolicy 'falco-response-quarantine' " +
        `in the namespace 'default' failed: the API server answered 403 Forbidden: ${refusal} (the function's ServiceAccount lacks the permission ` +
        "'create' on 'networkpolicies.networking.k8s.io': declare it in the action's permissions and apply the regenerated ClusterRole from manifests/)",
      target: { namespace: 'default', pod: 'kubecon' },
    });
  });

  it('409 on create (a concurrent alert created it first): reads it and carries on', async () => {
    const api = fakeApi()
      .get(POD)
      .reply(200, podObject('default', 'kubecon'))
      .get(POLICY)
      .reply(404, status(404, 'NotFound', 'not found'))
      .post(POLICIES, wantedPolicy())
      .reply(409, status(409, 'AlreadyExists', 'networkpolicies.networking.k8s.io "falco-response-quarantine" already exists'))
      .get(POLICY)
      .reply(200, storedPolicy())
      .patch(POD, labelPatch)
      .matchHeader('content-type', MERGE_PATCH)
      .reply(200, podObject('default', 'kubecon'))
      .post(EVENTS)
      .reply(201, (_uri, body) => eventStored(body));
    const calls = recorded(api);
    const { handler } = handlerWith();

    const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());

    api.done();
    assert.deepEqual(calls, [`GET ${POD}`, `GET ${POLICY}`, `POST ${POLICIES}`, `GET ${POLICY}`, `PATCH ${POD}`, `POST ${EVENTS}`]);
    assert.equal(
      answer.message,
      `isolated the pod 'kubecon' in the namespace 'default': the NetworkPolicy 'falco-response-quarantine' is as configured; labelled the pod ${QUARANTINE}=true`,
    );
  });

  it("a create whose answer was lost, retried into 409: reports the policy as this call's creation", async () => {
    const api = fakeApi()
      .get(POD)
      .reply(200, podObject('default', 'kubecon'))
      .get(POLICY)
      .reply(404, status(404, 'NotFound', 'not found'))
      .post(POLICIES, wantedPolicy())
      .replyWithError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))
      .post(POLICIES, wantedPolicy())
      .reply(409, status(409, 'AlreadyExists', 'networkpolicies.networking.k8s.io "falco-response-quarantine" already exists'))
      .get(POLICY)
      .reply(200, storedPolicy())
      .patch(POD, labelPatch)
      .reply(200, podObject('default', 'kubecon'))
      .post(EVENTS)
      .reply(201, (_uri, body) => eventStored(body));
    const { handler } = handlerWith();

    const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());

    api.done();
    assert.equal(
      answer.message,
      `isolated the pod 'kubecon' in the namespace 'default': created the NetworkPolicy 'falco-response-quarantine' ` +
        `(the answer to an earlier attempt was lost, and the retry found it in place); labelled the pod ${QUARANTINE}=true`,
    );
    assert.equal((answer.details as any).policyStep, 'created');
  });

  it('409 on replace (changed again since read): reads it again and restores it', async () => {
    const api = fakeApi()
      .get(POD)
      .reply(200, quarantinedPod())
      .get(POLICY)
      .reply(200, storedPolicy({ ingress: [{}] }, '10'))
      .put(POLICY)
      .reply(409, status(409, 'Conflict', 'the object has been modified; please apply your changes to the latest version and try again'))
      .get(POLICY)
      .reply(200, storedPolicy({ egress: [{}] }, '11'))
      .put(POLICY, (body: any) => body.metadata.resourceVersion === '11' && body.spec.egress === undefined)
      .reply(200, storedPolicy({}, '12'))
      .post(EVENTS)
      .reply(201, (_uri, body) => eventStored(body));
    const { handler } = handlerWith();

    const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());

    api.done();
    assert.equal((answer.details as any).policyStep, 'restored');
  });

  it('writes the allowances it is configured with: DNS to kube-dns, CIDRs and namespaces, both ways', async () => {
    // Given
    const peers = [
      { ipBlock: { cidr: '10.20.0.0/16' } },
      { ipBlock: { cidr: 'fd00::/8' } },
      { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'forensics' } } },
    ];
    const api = fakeApi()
      .get(POD)
      .reply(200, podObject('default', 'kubecon'))
      .get(POLICY)
      .reply(404, status(404, 'NotFound', 'not found'))
      .post(
        POLICIES,
        wantedPolicy({
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
        }),
      )
      .reply(201, storedPolicy())
      .patch(POD, labelPatch)
      .reply(200, podObject('default', 'kubecon'))
      .post(EVENTS)
      .reply(201, (_uri, body) => eventStored(body));
    const { handler } = handlerWith({ ALLOW_DNS: 'true', ALLOW_CIDRS: '10.20.0.0/16, fd00::/8', ALLOW_NAMESPACES: 'forensics' });

    // When
    const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());

    // Then
    api.done();
    assert.equal(answer.status, 'done');
  });

  it('uses the configured label key and policy name', async () => {
    const path = `${POLICIES}/quarantine`;
    const api = fakeApi()
      .get(POD)
      .reply(200, podObject('default', 'kubecon'))
      .get(path)
      .reply(404, status(404, 'NotFound', 'not found'))
      .post(POLICIES, (body: any) => body.metadata.name === 'quarantine' && body.spec.podSelector.matchLabels['example.com/isolated'] === 'true')
      .reply(201, { ...storedPolicy(), metadata: { ...storedPolicy().metadata, name: 'quarantine' } })
      .patch(POD, { metadata: { uid: 'uid-kubecon', labels: { 'example.com/isolated': 'true' } } })
      .reply(200, podObject('default', 'kubecon'))
      .post(EVENTS)
      .reply(201, (_uri, body) => eventStored(body));
    const { handler } = handlerWith({ QUARANTINE_LABEL: 'example.com/isolated', POLICY_NAME: 'quarantine' });

    const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());

    api.done();
    assert.equal(answer.status, 'done');
  });

  it('in dry-run mode reads the pod and the policy and says what it would do, writing nothing', async () => {
    const api = fakeApi().get(POD).reply(200, podObject('default', 'kubecon')).get(POLICY).reply(404, status(404, 'NotFound', 'not found'));
    const { handler } = handlerWith({ DRY_RUN: 'true' });

    const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());

    api.done();
    assert.equal(answer.dryRun, true);
    assert.equal(
      answer.message,
      `would isolate the pod 'kubecon' in the namespace 'default': would create the NetworkPolicy 'falco-response-quarantine'; would label the pod ${QUARANTINE}=true`,
    );
  });

  it('leaves a hostNetwork pod unlabelled: no NetworkPolicy can isolate it', async () => {
    const pod = podObject('default', 'kubecon');
    const api = fakeApi()
      .get(POD)
      .reply(200, { ...pod, spec: { ...pod.spec, hostNetwork: true } });
    const { handler } = handlerWith();

    const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());

    api.done();
    assert.deepEqual(answer, {
      status: 'skipped',
      code: 'not-applicable',
      reason: "the pod 'kubecon' in the namespace 'default' uses the node's network (hostNetwork): no NetworkPolicy can isolate it, so it is not labelled as isolated",
      target: { namespace: 'default', pod: 'kubecon' },
    });
  });

  it('answers "pod gone" when the pod is deleted before it is labelled', async () => {
    const api = fakeApi()
      .get(POD)
      .reply(200, podObject('default', 'kubecon'))
      .get(POLICY)
      .reply(200, storedPolicy())
      .patch(POD)
      .reply(404, status(404, 'NotFound', 'pods "kubecon" not found'));
    const { handler } = handlerWith();

    const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());

    api.done();
    assert.equal(answer.status, 'skipped');
    assert.equal(
      answer.reason,
      `the pod 'kubecon' in the namespace 'default' was deleted before it could be labelled ${QUARANTINE}=true (the NetworkPolicy 'falco-response-quarantine' is as configured)`,
    );
  });

  it('leaves a new pod that took the name alone: the uid in the patch is refused (422)', async () => {
    const api = fakeApi()
      .get(POD)
      .reply(200, podObject('default', 'kubecon'))
      .get(POLICY)
      .reply(200, storedPolicy())
      .patch(POD, labelPatch)
      .reply(422, status(422, 'Invalid', 'Pod "kubecon" is invalid: metadata.uid: Invalid value: "uid-kubecon": field is immutable'));
    const { handler } = handlerWith();

    const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());

    api.done();
    assert.equal(answer.status, 'skipped');
    assert.equal(
      answer.reason,
      "the pod 'kubecon' in the namespace 'default' was replaced by a new pod of the same name since it was inspected (uid uid-kubecon): " +
        "the new pod is left alone (the NetworkPolicy 'falco-response-quarantine' is as configured)",
    );
  });

  it('still reports the isolation when the audit Event cannot be recorded', async () => {
    const api = fakeApi()
      .get(POD)
      .reply(200, podObject('default', 'kubecon'))
      .get(POLICY)
      .reply(200, storedPolicy())
      .patch(POD)
      .reply(200, podObject('default', 'kubecon'))
      .post(EVENTS)
      .reply(500, status(500, 'InternalError', 'etcd is down'))
      .post(EVENTS)
      .times(3)
      .reply(500, status(500, 'InternalError', 'etcd is down'));
    const { handler, log } = handlerWith();

    const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());

    api.done();
    assert.equal(answer.status, 'done');
    assert.equal((answer.details as any).eventRecorded, 'queued');
    assert.deepEqual(
      log.lines.map((l) => [l.level, l.message]),
      [
        ['info', 'alert handled'],
        ['warn', 'the pod was isolated but the audit event could not be recorded'],
      ],
    );
  });

  describe('configuration', () => {
    const problem = (env: Record<string, string>) => {
      try {
        readParams(action.parameters, env);
      } catch (error) {
        assert.ok(error instanceof ConfigurationError);
        return error.message;
      }
      assert.fail('the configuration was accepted');
    };

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

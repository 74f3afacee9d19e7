/**
 * Nothing the API server seems to say is believed unchecked: a 2xx that is not the object asked for fails closed
 * before any write, and only the API server's own NotFound says an object is gone.
 */
import { strict as assert } from 'assert';
import deletePod from '../../functions/delete-pod/action';
import labelPod from '../../functions/label-pod/action';
import networkIsolate from '../../functions/network-isolate/action';
import type { PodAction } from '../../lib/action';
import { eventStored, fakeApi, podObject, policyStored, recorded, runTerminalShell as run, status } from '../helpers/fake-cluster';
import { podActions } from '../helpers/pod-actions';

const POD = '/api/v1/namespaces/default/pods/kubecon';
const POLICIES = '/apis/networking.k8s.io/v1/namespaces/default/networkpolicies';
const POLICY = `${POLICIES}/falco-response-quarantine`;
const QUARANTINE = 'falco-response.io/quarantine';
const OPT_OUT = { 'falco-response.io/ignore': 'true' };

describe('a 404 that is not the API server\'s NotFound', () => {
  it('GET pod: a 404 page from a proxy does not make the pod "already gone": failed, nothing else asked', async () => {
    const api = fakeApi().get(POD).reply(404, 'default backend - 404', { 'Content-Type': 'text/plain' });

    const { answer } = await run(deletePod);

    api.done();
    assert.deepEqual(answer, {
      status: 'failed',
      error: "get the pod 'kubecon' in the namespace 'default' failed: the API server answered 404: default backend - 404",
      target: { namespace: 'default', pod: 'kubecon' },
    });
  });

  it('delete-pod: a 404 that is not the API server\'s NotFound (a proxy\'s page) proves nothing: failed, no Event', async () => {
    const api = fakeApi().get(POD).reply(200, podObject('default', 'kubecon')).delete(POD).reply(404, '<html>404 page not found</html>');

    const { answer } = await run(deletePod);

    api.done();
    assert.equal(answer.status, 'failed');
    assert.equal(
      answer.error,
      "delete the pod 'kubecon' in the namespace 'default' failed: the API server answered 404: <html>404 page not found</html>",
    );
  });

});

describe('an error answer is quoted cut short and escaped: a proxy in front of the API server may answer any text', () => {
  const RBAC_HINT =
    " (the function's ServiceAccount lacks the permission 'get' on 'pods': declare it in the action's permissions and apply the regenerated ClusterRole from manifests/)";

  it('a Status whose message is 1 MB of text with terminal controls: 500 characters of it, escaped, in the answer and the log', async () => {
    // Given
    const api = fakeApi().get(POD).reply(403, status(403, 'Forbidden\u009b2J', `\u001b]0;owned\u0007\u202e${'y'.repeat(1_000_000)}`));

    // When
    const { answer, log } = await run(deletePod);

    // Then
    api.done();
    const expected =
      "get the pod 'kubecon' in the namespace 'default' failed: the API server answered 403 Forbidden\\u009b2J: " +
      `\\u001b]0;owned\\u0007\\u202e${'y'.repeat(489)}… (1000011 characters)${RBAC_HINT}`;
    assert.deepEqual(answer, { status: 'failed', error: expected, target: { namespace: 'default', pod: 'kubecon' } });
    assert.deepEqual(log.map((l) => l.error), [expected]);
  });

  it('a text page with terminal controls: escaped as well', async () => {
    const api = fakeApi().get(POD).reply(404, '\u001b[2J\u009b31mdefault backend - 404', { 'Content-Type': 'text/plain' });

    const { answer } = await run(deletePod);

    api.done();
    assert.equal(answer.error, "get the pod 'kubecon' in the namespace 'default' failed: the API server answered 404: \\u001b[2J\\u009b31mdefault backend - 404");
  });
});

/** A 2xx answer to `GET pod` that is not that pod; `why` is what the failure must say was wrong. */
interface JunkAnswer {
  readonly name: string;
  readonly status?: number;
  readonly body: string | Record<string, unknown> | unknown[];
  readonly headers?: Record<string, string>;
  readonly why: string;
}

const optedOutPod = () => podObject('default', 'kubecon', { labels: OPT_OUT, ownerKind: 'ReplicaSet' });
const withMetadata = (metadata: Record<string, unknown>) => {
  const pod = optedOutPod();
  return { ...pod, metadata: { ...pod.metadata, ...metadata } };
};

const JUNK_PODS: readonly JunkAnswer[] = [
  {
    name: 'JSON that is no object of Kubernetes',
    body: { hello: 'world' },
    why: 'apiVersion: required, but missing; kind: required, but missing; metadata: required, but missing; spec: required, but missing',
  },
  {
    name: 'an HTML page',
    body: '<html><body><h1>Welcome to nginx!</h1></body></html>',
    headers: { 'Content-Type': 'text/html' },
    why: '(the whole value): expected a Pod, got "<html><body><h1>Welcome to nginx!</h1></body></html>"',
  },
  { name: 'an array holding the pod', body: [optedOutPod()], why: '(the whole value): expected a Pod, got [{"apiVersion":"v1","kind":"Pod","metadata":{"name":"kubecon","namespace":"defau… (400 characters)' },
  { name: 'JSON null', body: 'null', headers: { 'Content-Type': 'application/json' }, why: '(the whole value): expected a Pod, got null' },
  { name: 'an empty body', status: 200, body: '', why: 'the answer is empty' },
  { name: 'a pod with no uid', body: withMetadata({ uid: undefined }), why: 'metadata.uid: required, but missing' },
  { name: 'another pod', body: withMetadata({ name: 'other' }), why: 'metadata.name: expected "kubecon", got "other"' },
  { name: 'the pod of another namespace', body: withMetadata({ namespace: 'prod' }), why: 'metadata.namespace: expected "default", got "prod"' },
  { name: 'another kind', body: { ...optedOutPod(), kind: 'Service' }, why: 'kind: expected "Pod", got "Service"' },
  { name: 'labels that are not strings', body: withMetadata({ labels: { 'falco-response.io/ignore': true } }), why: 'metadata.labels["falco-response.io/ignore"]: expected string, got true' },
  {
    name: 'a uid of 100,000 characters with terminal controls',
    body: withMetadata({ uid: `\u009b2J${'u'.repeat(100_000)}` }),
    why: `metadata.uid: expected a uid (letters, digits and '-', at most 128), got "\\u009b2J${'u'.repeat(71)}… (100010 characters)`,
  },
  {
    name: 'a deletionTimestamp that is not a time',
    body: withMetadata({ deletionTimestamp: 'soon \u001b[2J', deletionGracePeriodSeconds: 30 }),
    why: 'metadata.deletionTimestamp: expected a time (RFC 3339, such as 2026-11-26T10:00:01Z), got "soon \\u001b[2J"',
  },
  {
    name: 'a negative deletionGracePeriodSeconds',
    body: withMetadata({ deletionTimestamp: '2026-11-26T10:00:01Z', deletionGracePeriodSeconds: -5 }),
    why: 'metadata.deletionGracePeriodSeconds: expected a whole number of seconds, 0 or more, got -5',
  },
];

describe('a 2xx answer to GET pod that is not that pod: failed, no write, no Event', () => {
  for (const action of podActions()) {
    describe(action.name, () => {
      for (const junk of JUNK_PODS) {
        it(junk.name, async () => {
          // Given: only the read is answered; a write or an Event would find no interceptor and show in the answer
          const api = fakeApi()
            .get(POD)
            .reply(junk.status ?? 200, junk.body === '' ? undefined : junk.body, junk.headers);
          const calls = recorded(api);

          // When
          const { answer, status: code } = await run(action);

          // Then
          api.done();
          assert.equal(code, 500);
          assert.deepEqual(answer, {
            status: 'failed',
            error: `get the pod 'kubecon' in the namespace 'default' failed: the API server's answer is not that pod (${junk.why})`,
            target: { namespace: 'default', pod: 'kubecon' },
          });
          assert.deepEqual(calls, [`GET ${POD}`]);
        });
      }
    });
  }
});

const withPolicyMetadata = (metadata: Record<string, unknown>) => {
  const policy = policyStored();
  return { ...policy, metadata: { ...policy.metadata, ...metadata } };
};

const JUNK_POLICIES: readonly JunkAnswer[] = [
  {
    name: 'an HTML page',
    body: '<html>OK</html>',
    headers: { 'Content-Type': 'text/html' },
    why: '(the whole value): expected a NetworkPolicy, got "<html>OK</html>"',
  },
  { name: 'an array', body: [policyStored()], why: '(the whole value): expected a NetworkPolicy, got [{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":… (349 characters)' },
  { name: 'the pod instead of the policy', body: podObject('default', 'kubecon'), why: 'apiVersion: expected "networking.k8s.io/v1", got "v1"; kind: expected "NetworkPolicy", got "Pod"' },
  { name: 'a policy with no resourceVersion', body: withPolicyMetadata({ resourceVersion: undefined }), why: 'metadata.resourceVersion: required, but missing' },
  { name: 'another policy', body: withPolicyMetadata({ name: 'allow-all' }), why: 'metadata.name: expected "falco-response-quarantine", got "allow-all"' },
  { name: 'rules that are not lists', body: { ...policyStored(), spec: { podSelector: {}, ingress: 'all' } }, why: 'spec.ingress: expected Array<Partial<{ from: Array<Partial<{ podSelector: Partial<{ matchLabels: a map of strings, matchExpressions: Array<Partial<{ values: Array<string> }>> }>, namespaceSelector: Partial<{ matchLabels: a map of strings, matchExpressions: Array<Partial<{ values: Array<string> }>> }>, ipBlock: Partial<{ except: Array<string> }> }>>, ports: Array<UnknownRecord> }>>, got "all"' },
];

describe('network-isolate: a 2xx answer to GET networkpolicy that is not that policy: failed, nothing written, no Event', () => {
  for (const junk of JUNK_POLICIES) {
    it(junk.name, async () => {
      // Given
      const api = fakeApi()
        .get(POD)
        .reply(200, podObject('default', 'kubecon'))
        .get(POLICY)
        .reply(200, junk.body, junk.headers);
      const calls = recorded(api);

      // When
      const { answer } = await run(networkIsolate);

      // Then
      api.done();
      assert.deepEqual(answer, {
        status: 'failed',
        error:
          `the pod 'kubecon' in the namespace 'default' was not isolated and not labelled ${QUARANTINE}=true, because the NetworkPolicy ` +
          "'falco-response-quarantine' in the namespace 'default' could not be put in place: get the NetworkPolicy 'falco-response-quarantine' " +
          `in the namespace 'default' failed: the API server's answer is not that NetworkPolicy (${junk.why})`,
        target: { namespace: 'default', pod: 'kubecon' },
      });
      assert.deepEqual(calls, [`GET ${POD}`, `GET ${POLICY}`]);
    });
  }
});

describe('a 2xx answer to a write that is not that pod: failed, the change said to be unknown, no Event', () => {
  const EMPTY_WHY = 'apiVersion: required, but missing; kind: required, but missing; metadata: required, but missing; spec: required, but missing';
  const cases: { name: string; action: PodAction; write: 'delete' | 'patch'; change: string; body: string | Record<string, unknown>; why: string }[] = [
    { name: 'delete-pod: DELETE answered {}', action: deletePod, write: 'delete', change: 'deleted', body: {}, why: EMPTY_WHY },
    {
      name: 'delete-pod: DELETE answered an HTML page',
      action: deletePod,
      write: 'delete',
      change: 'deleted',
      body: '<html>OK</html>',
      why: '(the whole value): expected a Pod, got "<html>OK</html>"',
    },
    {
      name: 'delete-pod: DELETE answered with a pod of another uid',
      action: deletePod,
      write: 'delete',
      change: 'deleted',
      body: podObject('default', 'kubecon', { uid: 'uid-other' }),
      why: 'metadata.uid: expected "uid-kubecon", got "uid-other"',
    },
    { name: 'label-pod: PATCH answered {}', action: labelPod, write: 'patch', change: 'patched', body: {}, why: EMPTY_WHY },
    {
      name: 'label-pod: PATCH answered with another pod',
      action: labelPod,
      write: 'patch',
      change: 'patched',
      body: podObject('default', 'other'),
      why: 'metadata.name: expected "kubecon", got "other"',
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      // Given: the read and the write are answered; an Event would find no interceptor and show in the calls
      const api = fakeApi().get(POD).reply(200, podObject('default', 'kubecon'));
      (c.write === 'delete' ? api.delete(POD) : api.patch(POD)).reply(200, c.body);
      const calls = recorded(api);

      // When
      const { answer } = await run(c.action);

      // Then
      api.done();
      assert.deepEqual(answer, {
        status: 'failed',
        error: `${c.write} the pod 'kubecon' in the namespace 'default' failed: the API server's answer is not that pod (${c.why}): whether it was ${c.change} is not known`,
        target: { namespace: 'default', pod: 'kubecon' },
      });
      assert.deepEqual(calls, [`GET ${POD}`, `${c.write.toUpperCase()} ${POD}`]);
    });
  }

  it("delete-pod: DELETE answered the API server's Success Status (the object is gone at once): deleted", async () => {
    const api = fakeApi()
      .get(POD)
      .reply(200, podObject('default', 'kubecon'))
      .delete(POD)
      .reply(200, { kind: 'Status', apiVersion: 'v1', status: 'Success', details: { name: 'kubecon', kind: 'pods' } })
      .post('/api/v1/namespaces/default/events')
      .reply(201, (_uri, body) => eventStored(body));

    const { answer } = await run(deletePod);

    api.done();
    assert.deepEqual([answer.status, answer.message], ['done', "deleted the pod 'kubecon' in the namespace 'default' (grace period 1 s)"]);
  });
});

describe('network-isolate: a 2xx answer to a policy write that is not that policy: failed, the pod not labelled, no Event', () => {
  const EMPTY_WHY = 'apiVersion: required, but missing; kind: required, but missing; metadata: required, but missing; spec: required, but missing';
  const notIsolated = (write: string, change: string, why: string) =>
    `the pod 'kubecon' in the namespace 'default' was not isolated and not labelled ${QUARANTINE}=true, because the NetworkPolicy ` +
    `'falco-response-quarantine' in the namespace 'default' could not be put in place: ${write} the NetworkPolicy 'falco-response-quarantine' ` +
    `in the namespace 'default' failed: the API server's answer is not that NetworkPolicy (${why}): whether it was ${change} is not known`;

  it('create answered 201 {}', async () => {
    const api = fakeApi()
      .get(POD)
      .reply(200, podObject('default', 'kubecon'))
      .get(POLICY)
      .reply(404, status(404, 'NotFound', 'networkpolicies.networking.k8s.io "falco-response-quarantine" not found'))
      .post(POLICIES)
      .reply(201, {});
    const calls = recorded(api);

    const { answer } = await run(networkIsolate);

    api.done();
    assert.equal(answer.error, notIsolated('create', 'created', EMPTY_WHY));
    assert.deepEqual(calls, [`GET ${POD}`, `GET ${POLICY}`, `POST ${POLICIES}`]);
  });

  it('replace answered 200 with a policy of another uid', async () => {
    const drifted = { ...policyStored(), spec: { podSelector: {} } };
    const api = fakeApi()
      .get(POD)
      .reply(200, podObject('default', 'kubecon'))
      .get(POLICY)
      .reply(200, drifted)
      .put(POLICY)
      .reply(200, withPolicyMetadata({ uid: 'another-uid' }));
    const calls = recorded(api);

    const { answer } = await run(networkIsolate);

    api.done();
    assert.equal(answer.error, notIsolated('update', 'replaced', 'metadata.uid: expected "policy-uid", got "another-uid"'));
    assert.deepEqual(calls, [`GET ${POD}`, `GET ${POLICY}`, `PUT ${POLICY}`]);
  });
});

/**
 * Nothing the API server seems to say is believed unchecked: a 2xx that is not the object asked for fails closed
 * before any write, and only the API server's own NotFound says an object is gone.
 */
import { strict as assert } from 'assert';
import nock from 'nock';
import deletePod from '../../functions/delete-pod/action';
import labelPod from '../../functions/label-pod/action';
import networkIsolate from '../../functions/network-isolate/action';
import type { PodAction } from '../../lib/action';
import type { EventBody } from '../../lib/kube/events';
import { eventStored, fakeApi, handlerFor, podObject, policyStored, runTerminalShell as run, serveApi, status } from '../helpers/fake-cluster';
import { alert, kubelessContext, kubelessEvent } from '../helpers/fixtures';
import { MemoryCluster, type Reply } from '../helpers/memory-cluster';
import { actionCases, alertHandled, DELETE, GET, PATCH, POST, PUT, STORED, TARGET } from '../helpers/action-cases';
import { podActions } from '../helpers/pod-actions';

const POD = '/api/v1/namespaces/default/pods/kubecon';
const EVENTS = '/api/v1/namespaces/default/events';
const POLICIES = '/apis/networking.k8s.io/v1/namespaces/default/networkpolicies';
const POLICY = `${POLICIES}/falco-response-quarantine`;
const QUARANTINE = 'falco-response.io/quarantine';
const OPT_OUT = { 'falco-response.io/ignore': 'true' };

const ALL = { RULES: '*' };
const RBAC_HINT =
  " (the function's ServiceAccount lacks the permission 'get' on 'pods': declare it in the action's permissions and apply the regenerated ClusterRole from manifests/)";
const CONTROLS_ERROR =
  "get the pod 'kubecon' in the namespace 'default' failed: the API server answered 403 Forbidden\\u009b2J: " +
  `\\u001b]0;owned\\u0007\\u202e${'y'.repeat(489)}… (1000011 characters)${RBAC_HINT}`;

describe('a 404 that is not the API server\'s NotFound', () => {
  actionCases(deletePod, [
    {
      title: 'GET pod: a 404 page from a proxy does not make the pod "already gone": failed, nothing else asked',
      env: ALL,
      calls: [GET(POD, [404, 'default backend - 404', { 'Content-Type': 'text/plain' }])],
      answer: { status: 'failed', error: "get the pod 'kubecon' in the namespace 'default' failed: the API server answered 404: default backend - 404", target: TARGET },
    },
    {
      title: "delete-pod: a 404 that is not the API server's NotFound (a proxy's page) proves nothing: failed, no Event",
      env: ALL,
      calls: [GET(POD, [200, podObject('default', 'kubecon')]), DELETE(POD, [404, '<html>404 page not found</html>'])],
      answer: {
        status: 'failed',
        error: "delete the pod 'kubecon' in the namespace 'default' failed: the API server answered 404: <html>404 page not found</html>",
        target: TARGET,
      },
    },
  ]);
});

describe('an error answer is quoted cut short and escaped: a proxy in front of the API server may answer any text', () => {
  actionCases(deletePod, [
    {
      title: 'a Status whose message is 1 MB of text with terminal controls: 500 characters of it, escaped, in the answer and the log',
      env: ALL,
      calls: [GET(POD, [403, status(403, 'Forbidden\u009b2J', `\u001b]0;owned\u0007\u202e${'y'.repeat(1_000_000)}`)])],
      answer: { status: 'failed', error: CONTROLS_ERROR, target: TARGET },
      log: [
        alertHandled('error', { outcome: 'failed', error: CONTROLS_ERROR }),
      ],
    },
    {
      title: 'a text page with terminal controls: escaped as well',
      env: ALL,
      calls: [GET(POD, [404, '\u001b[2J\u009b31mdefault backend - 404', { 'Content-Type': 'text/plain' }])],
      answer: {
        status: 'failed',
        error: "get the pod 'kubecon' in the namespace 'default' failed: the API server answered 404: \\u001b[2J\\u009b31mdefault backend - 404",
        target: TARGET,
      },
    },
  ]);
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
      // Only the read is answered; a write or an Event would find no interceptor
      actionCases(
        action,
        JUNK_PODS.map((junk) => ({
          title: junk.name,
          env: ALL,
          calls: [GET(POD, [junk.status ?? 200, junk.body === '' ? undefined : junk.body, junk.headers])],
          answer: {
            status: 'failed',
            error: `get the pod 'kubecon' in the namespace 'default' failed: the API server's answer is not that pod (${junk.why})`,
            target: TARGET,
          },
        })),
      );
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
  { name: 'rules that are not lists', body: { ...policyStored(), spec: { podSelector: {}, ingress: 'all' } }, why: 'spec.ingress: expected a list, got "all"' },
];

describe('network-isolate: a 2xx answer to GET networkpolicy that is not that policy: failed, nothing written, no Event', () => {
  actionCases(
    networkIsolate,
    JUNK_POLICIES.map((junk) => ({
      title: junk.name,
      env: ALL,
      calls: [GET(POD, [200, podObject('default', 'kubecon')]), GET(POLICY, [200, junk.body, junk.headers])],
      answer: {
        status: 'failed',
        error:
          `the pod 'kubecon' in the namespace 'default' was not isolated and not labelled ${QUARANTINE}=true, because the NetworkPolicy ` +
          "'falco-response-quarantine' in the namespace 'default' could not be put in place: get the NetworkPolicy 'falco-response-quarantine' " +
          `in the namespace 'default' failed: the API server's answer is not that NetworkPolicy (${junk.why})`,
        target: TARGET,
      },
    })),
  );
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
  // The read and the write are answered; an Event would find no interceptor
  for (const c of cases) {
    actionCases(c.action, [
      {
        title: c.name,
        env: ALL,
        calls: [GET(POD, [200, podObject('default', 'kubecon')]), (c.write === 'delete' ? DELETE : PATCH)(POD, [200, c.body])],
        answer: {
          status: 'failed',
          error: `${c.write} the pod 'kubecon' in the namespace 'default' failed: the API server's answer is not that pod (${c.why}): whether it was ${c.change} is not known`,
          target: TARGET,
        },
      },
    ]);
  }

  actionCases(deletePod, [
    {
      title: "delete-pod: DELETE answered the API server's Success Status (the object is gone at once): deleted",
      env: ALL,
      calls: [
        GET(POD, [200, podObject('default', 'kubecon')]),
        DELETE(POD, [200, { kind: 'Status', apiVersion: 'v1', status: 'Success', details: { name: 'kubecon', kind: 'pods' } }]),
        POST(EVENTS, STORED),
      ],
      answer: {
        status: 'done',
        action: 'delete-pod',
        target: TARGET,
        dryRun: false,
        message: "deleted the pod 'kubecon' in the namespace 'default' (grace period 1 s)",
        details: { touched: [{ kind: 'Pod', namespace: 'default', name: 'kubecon', changed: true }], changed: true, eventRecorded: 'queued', owner: 'none' },
      },
    },
  ]);
});

describe('network-isolate: a 2xx answer to a policy write that is not that policy: failed, the pod not labelled, no Event', () => {
  const EMPTY_WHY = 'apiVersion: required, but missing; kind: required, but missing; metadata: required, but missing; spec: required, but missing';
  const notIsolated = (write: string, change: string, why: string) =>
    `the pod 'kubecon' in the namespace 'default' was not isolated and not labelled ${QUARANTINE}=true, because the NetworkPolicy ` +
    `'falco-response-quarantine' in the namespace 'default' could not be put in place: ${write} the NetworkPolicy 'falco-response-quarantine' ` +
    `in the namespace 'default' failed: the API server's answer is not that NetworkPolicy (${why}): whether it was ${change} is not known`;

  actionCases(networkIsolate, [
    {
      title: 'create answered 201 {}',
      env: ALL,
      calls: [
        GET(POD, [200, podObject('default', 'kubecon')]),
        GET(POLICY, [404, status(404, 'NotFound', 'networkpolicies.networking.k8s.io "falco-response-quarantine" not found')]),
        POST(POLICIES, [201, {}]),
      ],
      answer: { status: 'failed', error: notIsolated('create', 'created', EMPTY_WHY), target: TARGET },
    },
    {
      title: 'replace answered 200 with a policy of another uid',
      env: ALL,
      calls: [
        GET(POD, [200, podObject('default', 'kubecon')]),
        GET(POLICY, [200, { ...policyStored(), spec: { podSelector: {} } }]),
        PUT(POLICY, [200, withPolicyMetadata({ uid: 'another-uid' })]),
      ],
      answer: { status: 'failed', error: notIsolated('update', 'replaced', 'metadata.uid: expected "policy-uid", got "another-uid"'), target: TARGET },
    },
  ]);
});

/** A 2xx answer to the audit Event POST that is not the Event sent; `why` says what was wrong with it. */
interface JunkEvent {
  readonly name: string;
  readonly reply: (sent: EventBody) => Reply;
  readonly why: string | ((sent: EventBody) => string);
}

const eventAs = (sent: EventBody, change: (stored: Record<string, any>) => void): Reply => {
  const stored = eventStored(sent) as Record<string, any>;
  change(stored);
  return [201, stored];
};
const EMPTY_EVENT_WHY =
  'apiVersion: required, but missing; kind: required, but missing; metadata: required, but missing; involvedObject: required, but missing; reason: required, but missing';

const JUNK_EVENTS: readonly JunkEvent[] = [
  { name: '201 {}', reply: () => [201, {}], why: EMPTY_EVENT_WHY },
  { name: '200 {}', reply: () => [200, {}], why: EMPTY_EVENT_WHY },
  {
    name: 'an HTML page',
    reply: () => [200, '<html><body>OK</body></html>', { 'Content-Type': 'text/html' }],
    why: '(the whole value): expected an Event, got "<html><body>OK</body></html>"',
  },
  { name: 'JSON null', reply: () => [201, 'null', { 'Content-Type': 'application/json' }], why: '(the whole value): expected an Event, got null' },
  { name: 'an empty body', reply: () => [201, ''], why: 'the answer is empty' },
  {
    name: 'an array',
    reply: (sent) => [201, [{ kind: sent.kind }]],
    why: '(the whole value): expected an Event, got [{"kind":"Event"}]',
  },
  {
    name: 'the pod instead of the Event',
    reply: () => [201, podObject('default', 'kubecon')],
    why: 'kind: expected "Event", got "Pod"; involvedObject: required, but missing; reason: required, but missing',
  },
  {
    name: 'an events.k8s.io/v1 Event',
    reply: (sent) => eventAs(sent, (e) => (e.apiVersion = 'events.k8s.io/v1')),
    why: 'apiVersion: expected "v1", got "events.k8s.io/v1"',
  },
  {
    name: 'the Event in another namespace',
    reply: (sent) => eventAs(sent, (e) => (e.metadata.namespace = 'prod')),
    why: 'metadata.namespace: expected "default", got "prod"',
  },
  { name: 'an Event with no name', reply: (sent) => eventAs(sent, (e) => delete e.metadata.name), why: 'metadata.name: required, but missing' },
  { name: 'an Event with no uid', reply: (sent) => eventAs(sent, (e) => delete e.metadata.uid), why: 'metadata.uid: required, but missing' },
  {
    name: 'an Event of another name',
    reply: (sent) => eventAs(sent, (e) => (e.metadata.name = 'other.\u009b2J')),
    why: 'metadata.name: expected a name generated from "kubecon.", got "other.\\u009b2J"',
  },
  {
    name: 'an Event named with the generateName alone',
    reply: (sent) => eventAs(sent, (e) => (e.metadata.name = 'kubecon.')),
    why: 'metadata.name: expected a name generated from "kubecon.", got "kubecon."',
  },
  {
    name: 'an Event about another pod',
    reply: (sent) => eventAs(sent, (e) => (e.involvedObject = { ...e.involvedObject, name: 'other', uid: 'uid-other' })),
    why: 'involvedObject.name: expected "kubecon", got "other"; involvedObject.uid: expected "uid-kubecon", got "uid-other"',
  },
  {
    name: 'an Event about a pod of another uid',
    reply: (sent) => eventAs(sent, (e) => (e.involvedObject = { ...e.involvedObject, uid: 'uid-other' })),
    why: 'involvedObject.uid: expected "uid-kubecon", got "uid-other"',
  },
  {
    name: 'an Event about no uid',
    reply: (sent) => eventAs(sent, (e) => delete e.involvedObject.uid),
    why: 'involvedObject.uid: expected "uid-kubecon", got nothing',
  },
  {
    name: 'an Event for another reason',
    reply: (sent) => eventAs(sent, (e) => (e.reason = 'Scheduled')),
    why: (sent) => `reason: expected ${JSON.stringify(sent.reason)}, got "Scheduled"`,
  },
];

/**
 * Serves the pod action's calls from an in-memory cluster holding the pod, the Event POST from `events`: every
 * request, as `METHOD path`, in `calls`.
 */
function serveWithEvents(events: (sent: EventBody) => Reply): { calls: string[] } {
  const cluster = new MemoryCluster().addPod('default', 'kubecon');
  const calls: string[] = [];
  serveApi((method, uri, sent) => {
    calls.push(`${method} ${uri}`);
    return method === 'POST' && uri === EVENTS ? events(sent as EventBody) : cluster.answer(method, uri, sent);
  });
  return { calls };
}

describe('a 2xx answer to the audit Event POST that is not the Event sent: the change done, the Event queued, the log says why', () => {
  for (const action of podActions()) {
    describe(action.name, () => {
      let healthy: { answer: Record<string, unknown>; calls: string[] };

      before(async () => {
        const { calls } = serveWithEvents((sent) => [201, eventStored(sent)]);
        const { answer, log } = await run(action);
        nock.cleanAll();
        healthy = { answer, calls };
        assert.equal(answer.status, 'done', JSON.stringify(answer));
        assert.equal((answer.details as Record<string, unknown>).eventRecorded, 'queued', JSON.stringify(answer));
        assert.deepEqual(log.filter((l) => l.level !== 'info'), []);
      });

      it('the healthy run asks for one Event, last', () => {
        assert.deepEqual(healthy.calls.filter((c) => c.includes('/events')), [`POST ${EVENTS}`]);
        assert.equal(healthy.calls[healthy.calls.length - 1], `POST ${EVENTS}`);
      });

      for (const junk of JUNK_EVENTS) {
        it(junk.name, async () => {
          // Given: the cluster answers every call as it should, the Event POST excepted
          let sent: EventBody | undefined;
          const { calls } = serveWithEvents((body) => ((sent = body), junk.reply(body)));

          // When
          const { answer, status: code, log } = await run(action);

          // Then: the change is reported done as on a healthy cluster (the Event is recorded after the answer), the log says the rest
          assert.equal(code, 200);
          assert.deepEqual(answer, healthy.answer);
          assert.deepEqual(calls, healthy.calls);
          assert.ok(sent !== undefined);
          const why = typeof junk.why === 'string' ? junk.why : junk.why(sent);
          const warnings = log.filter((l) => l.level !== 'info');
          assert.equal(warnings.length, 1, JSON.stringify(log));
          const [warning] = warnings;
          assert.match(String(warning?.message), /^the pod was (deleted|labelled|isolated|captured) but the audit event could not be recorded$/);
          const error =
            "create an event about the pod 'kubecon' in the namespace 'default' failed: the API server's answer is not the Event sent (";
          assert.equal(warning?.error, `${error}${why}): whether it was recorded is not known`);
          assert.equal(warning?.level, 'warn');
        });
      }
    });
  }
});

describe('the audit Event of a pod with a long name: the API server names it from the first 58 characters of its generateName', () => {
  const LONG = `web-${'a'.repeat(240)}`;
  const LONG_POD = `/api/v1/namespaces/default/pods/${LONG}`;
  const longAlert = () => {
    const a = alert('terminal-shell');
    a.output_fields['k8s.pod.name'] = LONG;
    return a;
  };
  const runLong = async () => {
    const { handler, log } = handlerFor(deletePod, { RULES: '*' });
    const answer = await handler(kubelessEvent(longAlert()).event, kubelessContext());
    return { answer, log: log.lines };
  };

  it('an Event named as the API server names it is recorded', async () => {
    // Given
    let stored: Record<string, any> = {};
    const api = fakeApi()
      .get(LONG_POD)
      .reply(200, podObject('default', LONG, { uid: 'uid-long' }))
      .delete(LONG_POD)
      .reply(200, podObject('default', LONG, { uid: 'uid-long' }))
      .post(EVENTS, (body: EventBody) => body.metadata.generateName === `${LONG.slice(0, 200)}.`)
      .reply(201, (_uri, body) => (stored = eventStored(body)));

    // When
    const { answer, log } = await runLong();

    // Then
    api.done();
    assert.equal(stored.metadata.name.length, 63);
    assert.deepEqual([answer.status, (answer.details as Record<string, unknown>).eventRecorded], ['done', 'queued']);
    assert.deepEqual(log.filter((l) => l.level !== 'info'), []);
  });

  it('an Event whose name does not start with those 58 characters is not', async () => {
    const api = fakeApi()
      .get(LONG_POD)
      .reply(200, podObject('default', LONG, { uid: 'uid-long' }))
      .delete(LONG_POD)
      .reply(200, podObject('default', LONG, { uid: 'uid-long' }))
      .post(EVENTS)
      .reply(201, (_uri, body) => {
        const event = eventStored(body);
        return { ...event, metadata: { ...event.metadata, name: `web-${'a'.repeat(53)}x12345` } };
      });

    const { answer, log } = await runLong();

    api.done();
    assert.deepEqual([answer.status, (answer.details as Record<string, unknown>).eventRecorded], ['done', 'queued']);
    assert.equal(
      log.find((l) => l.level === 'warn')?.error,
      `create an event about the pod '${LONG}' in the namespace 'default' failed: the API server's answer is not the Event sent ` +
        `(metadata.name: expected a name generated from "web-${'a'.repeat(54)}", got "web-${'a'.repeat(53)}x12345"): whether it was recorded is not known`,
    );
  });
});

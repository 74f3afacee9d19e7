import { strict as assert } from 'assert';
import nock from 'nock';
import action from '../../functions/delete-pod/action';
import { eventStored, fakeApi, handlerFor, podObject, status } from '../helpers/fake-cluster';
import { alert, kubelessContext, kubelessEvent } from '../helpers/fixtures';

const POD = '/api/v1/namespaces/default/pods/kubecon';
const EVENTS = '/api/v1/namespaces/default/events';

const handlerWith = (env: Record<string, string> = {}) => handlerFor(action, env);

/** The answer's details after a deletion (lib/runner.ts builds them): the pod touched, and the owner delete-pod read. */
const deletedDetails = (owner: string, eventRecorded: 'queued' | false) => ({
  touched: [{ kind: 'Pod', namespace: 'default', name: 'kubecon', changed: true }],
  changed: true,
  eventRecorded,
  owner,
});

describe('delete-pod', () => {
  it('deletes the pod a terminal-shell alert names, with a uid precondition, and records an Event', async () => {
    // Given
    const api = fakeApi()
      .get(POD)
      .reply(200, podObject('default', 'kubecon', { ownerKind: 'ReplicaSet' }))
      .delete(POD, { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 1, preconditions: { uid: 'uid-kubecon' } })
      .matchHeader('content-type', 'application/json')
      .reply(200, podObject('default', 'kubecon'))
      .post(EVENTS, (body: any) => {
        assert.equal(body.reason, 'FalcoResponseDeleted');
        assert.deepEqual(body.involvedObject, { apiVersion: 'v1', kind: 'Pod', name: 'kubecon', namespace: 'default', uid: 'uid-kubecon' });
        assert.equal(
          body.message,
          'delete-pod deleted the pod after the Falco rule "Terminal shell in container" (priority Critical, alert uuid 3c5d0a84-4b7e-4f44-9a21-2f0cbb4f8e11)',
        );
        return true;
      })
      .reply(201, (_uri, body) => eventStored(body));
    const { handler, log } = handlerWith();
    const { event, response } = kubelessEvent(alert('terminal-shell'));

    // When
    const answer = await handler(event, kubelessContext());

    // Then
    api.done();
    assert.equal(response.statusCode, 200);
    assert.deepEqual(answer, {
      status: 'done',
      action: 'delete-pod',
      target: { namespace: 'default', pod: 'kubecon' },
      dryRun: false,
      message: "deleted the pod 'kubecon' in the namespace 'default' (grace period 1 s)",
      details: deletedDetails('ReplicaSet', 'queued'),
    });
    assert.equal(log.lines.length, 1);
    assert.deepEqual(
      { ...log.lines[0], time: undefined, durationMs: undefined },
      {
        time: undefined,
        level: 'info',
        message: 'alert handled',
        eventId: '6f1d3c9e-1b7a-4c2d-9e8f-0a1b2c3d4e5f',
        rule: 'Terminal shell in container',
        priority: 'Critical',
        target: { namespace: 'default', name: 'kubecon' },
        outcome: 'done',
        result: "deleted the pod 'kubecon' in the namespace 'default' (grace period 1 s)",
        dryRun: false,
        durationMs: undefined,
      },
    );
  });

  it('answers "already gone" for a pod that no longer exists, so repeated alerts are harmless', async () => {
    const api = fakeApi().get(POD).reply(404, status(404, 'NotFound', 'pods "kubecon" not found'));
    const { handler } = handlerWith();
    const { event, response } = kubelessEvent(alert('terminal-shell'));

    const answer = await handler(event, kubelessContext());

    api.done();
    assert.equal(response.statusCode, 200);
    assert.deepEqual(answer, {
      status: 'skipped',
      code: 'pod-gone',
      reason: "the pod 'kubecon' in the namespace 'default' is already gone",
      target: { namespace: 'default', pod: 'kubecon' },
    });
  });

  it('answers "already deleted" when the pod vanishes between the read and the delete', async () => {
    const api = fakeApi()
      .get(POD)
      .reply(200, podObject('default', 'kubecon'))
      .delete(POD)
      .reply(404, status(404, 'NotFound', 'pods "kubecon" not found'));
    const { handler } = handlerWith();
    const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());
    api.done();
    assert.equal(answer.status, 'skipped');
    assert.equal(answer.reason, "the pod 'kubecon' in the namespace 'default' is already deleted");
  });

  describe('a pod already terminating', () => {
    const terminating = (deletionGracePeriodSeconds: number) => {
      const pod = podObject('default', 'kubecon');
      return { ...pod, metadata: { ...pod.metadata, deletionTimestamp: '2026-11-26T10:00:01Z', deletionGracePeriodSeconds } };
    };

    it('is left to finish when its grace period is no longer than ours: a burst of alerts deletes it once', async () => {
      const api = fakeApi().get(POD).reply(200, terminating(1));
      const { handler } = handlerWith();

      const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());

      api.done();
      assert.deepEqual(answer, {
        status: 'skipped',
        code: 'pod-gone',
        reason: "the pod 'kubecon' in the namespace 'default' is already being deleted (since 2026-11-26T10:00:01Z, grace period 1 s): deleting it again would not hasten it",
        target: { namespace: 'default', pod: 'kubecon' },
      });
    });

    it('is deleted again when it was given a longer grace period: ours cuts it short', async () => {
      const api = fakeApi()
        .get(POD)
        .reply(200, terminating(3600))
        .delete(POD, { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 1, preconditions: { uid: 'uid-kubecon' } })
        .reply(200, terminating(1))
        .post(EVENTS)
        .reply(201, (_uri, body) => eventStored(body));
      const { handler } = handlerWith();

      const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());

      api.done();
      assert.equal(answer.status, 'done');
      assert.equal(answer.message, "deleted the pod 'kubecon' in the namespace 'default' (grace period 1 s)");
    });
  });

  it('reports and audits its own deletion when the answer to the first DELETE was lost and the retry finds the pod gone', async () => {
    // Given: the server deleted the pod but the connection broke before the answer (seen on a real API server,
    // test/e2e/fault-injection.test.ts); the retry gets 404
    const api = fakeApi()
      .get(POD)
      .reply(200, podObject('default', 'kubecon'))
      .delete(POD)
      .replyWithError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))
      .delete(POD)
      .reply(404, status(404, 'NotFound', 'pods "kubecon" not found'))
      .post(EVENTS, (body: any) => body.reason === 'FalcoResponseDeleted')
      .reply(201, (_uri, body) => eventStored(body));
    const { handler } = handlerWith();

    // When
    const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());

    // Then
    api.done();
    assert.equal(answer.status, 'done');
    assert.equal(
      answer.message,
      "deleted the pod 'kubecon' in the namespace 'default' (grace period 1 s; the answer to an earlier attempt was lost, and the retry found the pod gone)",
    );
    assert.deepEqual(answer.details, deletedDetails('none', 'queued'));
  });

  it('leaves a new pod that took the same name alone (uid precondition refused: 409)', async () => {
    const api = fakeApi()
      .get(POD)
      .reply(200, podObject('default', 'kubecon'))
      .delete(POD)
      .reply(409, status(409, 'Conflict', 'Precondition failed: UID in precondition: uid-kubecon, UID in object meta: other'));
    const { handler } = handlerWith();
    const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());
    api.done();
    assert.equal(answer.status, 'skipped');
    assert.match(String(answer.reason), /was replaced by a new pod of the same name since it was inspected \(uid uid-kubecon\)/);
  });

  it('still reports the deletion when the audit Event cannot be recorded', async () => {
    const api = fakeApi()
      .get(POD)
      .reply(200, podObject('default', 'kubecon'))
      .delete(POD)
      .reply(200, podObject('default', 'kubecon'))
      .post(EVENTS)
      .reply(403, status(403, 'Forbidden', 'events is forbidden'));
    const { handler, log } = handlerWith();
    const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());
    api.done();
    assert.equal(answer.status, 'done');
    // the answer comes first and says the Event is queued; the warning follows it, naming the call
    assert.deepEqual(answer.details, deletedDetails('none', 'queued'));
    assert.deepEqual(
      log.lines.map((l) => [l.level, l.message, l.eventId, l.target]),
      [
        ['info', 'alert handled', '6f1d3c9e-1b7a-4c2d-9e8f-0a1b2c3d4e5f', { namespace: 'default', name: 'kubecon' }],
        ['warn', 'the pod was deleted but the audit event could not be recorded', '6f1d3c9e-1b7a-4c2d-9e8f-0a1b2c3d4e5f', { namespace: 'default', name: 'kubecon' }],
      ],
    );
  });

  it("quotes a controller kind that is no kind's name cut short and escaped: whoever creates the pod writes it", async () => {
    // Given: the API server checks only that an owner's kind is not empty
    const api = fakeApi()
      .get(POD)
      .reply(200, podObject('default', 'kubecon', { ownerKind: `\u009b2J\u202e${'K'.repeat(100_000)}` }))
      .delete(POD)
      .reply(200, podObject('default', 'kubecon'))
      .post(EVENTS)
      .reply(201, (_uri, body) => eventStored(body));
    const { handler } = handlerWith();

    // When
    const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());

    // Then: deleted as any owned pod, the kind quoted as received values are
    api.done();
    assert.equal(answer.status, 'done');
    assert.deepEqual(answer.details, deletedDetails(`"\\u009b2J\\u202e${'K'.repeat(65)}… (100016 characters)`, 'queued'));
  });

  it("does not take a controller of kind 'none' for no controller: SKIP_OWNER_KINDS=none leaves only bare pods", async () => {
    const api = fakeApi()
      .get(POD)
      .reply(200, podObject('default', 'kubecon', { ownerKind: 'none' }))
      .delete(POD)
      .reply(200, podObject('default', 'kubecon'))
      .post(EVENTS)
      .reply(201, (_uri, body) => eventStored(body));
    const { handler } = handlerWith({ SKIP_OWNER_KINDS: 'none' });

    const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());

    api.done();
    assert.deepEqual([answer.status, answer.details], ['done', deletedDetails('"none"', 'queued')]);
  });

  it('leaves pods whose controller kind is listed in SKIP_OWNER_KINDS', async () => {
    const api = fakeApi().get(POD).reply(200, podObject('default', 'kubecon', { ownerKind: 'DaemonSet' }));
    const { handler } = handlerWith({ SKIP_OWNER_KINDS: 'DaemonSet,none' });
    const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());
    api.done();
    assert.deepEqual(answer, {
      status: 'skipped',
      code: 'not-applicable',
      reason: "the pod 'kubecon' in the namespace 'default' is owned by a DaemonSet, which SKIP_OWNER_KINDS leaves alone",
      target: { namespace: 'default', pod: 'kubecon' },
    });
  });

  it('in dry-run mode reads the pod and reports what it would delete, changing nothing', async () => {
    const api = fakeApi().get(POD).reply(200, podObject('default', 'kubecon'));
    const { handler } = handlerWith({ DRY_RUN: 'true' });
    const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());
    api.done();
    assert.equal(answer.status, 'done');
    assert.equal(answer.dryRun, true);
    assert.equal(answer.message, "would delete the pod 'kubecon' in the namespace 'default' (grace period 1 s)");
  });

  it('acts only on the rule "Terminal shell in container" unless configured otherwise', async () => {
    const { handler } = handlerWith();
    const answer = await handler(kubelessEvent(alert('contact-k8s-api')).event, kubelessContext());
    assert.deepEqual(answer, {
      status: 'skipped',
      code: 'rule-not-selected',
      reason: 'the rule "Contact K8S API Server From Container" is not one this action answers (RULES)',
    });
  });

  it("acts on every rule only when RULES is '*'", async () => {
    const path = '/api/v1/namespaces/openfaas-fn/pods/falco-pod-delete-7dc9f5fbb8-gbfk7';
    const api = fakeApi()
      .get(path)
      .reply(200, podObject('openfaas-fn', 'falco-pod-delete-7dc9f5fbb8-gbfk7'))
      .delete(path)
      .reply(200, podObject('openfaas-fn', 'falco-pod-delete-7dc9f5fbb8-gbfk7'))
      .post('/api/v1/namespaces/openfaas-fn/events')
      .reply(201, (_uri, body) => eventStored(body));
    const { handler } = handlerWith({ RULES: '*' });
    const answer = await handler(kubelessEvent(alert('contact-k8s-api')).event, kubelessContext());
    api.done();
    assert.equal(answer.status, 'done');
  });

  it('answers 500 naming the missing permission when the API server refuses (403), and does not retry', async () => {
    const api = fakeApi()
      .get(POD)
      .reply(200, podObject('default', 'kubecon'))
      .delete(POD)
      .reply(403, status(403, 'Forbidden', 'pods "kubecon" is forbidden: User "system:serviceaccount:falco-response:delete-pod" cannot delete resource "pods"'));
    const { handler } = handlerWith();
    const { event, response } = kubelessEvent(alert('terminal-shell'));
    const answer = await handler(event, kubelessContext());
    api.done();
    assert.equal(response.statusCode, 500);
    assert.deepEqual(answer, {
      status: 'failed',
      error:
        "delete the pod 'kubecon' in the namespace 'default' failed: the API server answered 403 Forbidden: pods \"kubecon\" is forbidden: " +
        'User "system:serviceaccount:falco-response:delete-pod" cannot delete resource "pods" (the function\'s ServiceAccount lacks the ' +
        "permission 'delete' on 'pods': declare it in the action's permissions and apply the regenerated ClusterRole from manifests/)",
      target: { namespace: 'default', pod: 'kubecon' },
    });
  });

  it('retries 429 (honouring Retry-After) and 503, then succeeds', async () => {
    const api = fakeApi()
      .get(POD)
      .reply(429, status(429, 'TooManyRequests', 'slow down'), { 'Retry-After': '0' })
      .get(POD)
      .reply(503, status(503, 'ServiceUnavailable', 'etcd leader changed'))
      .get(POD)
      .reply(200, podObject('default', 'kubecon'))
      .delete(POD)
      .replyWithError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))
      .delete(POD)
      .reply(200, podObject('default', 'kubecon'))
      .post(EVENTS)
      .reply(201, (_uri, body) => eventStored(body));
    const { handler } = handlerWith();
    const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext());
    api.done();
    assert.equal(answer.status, 'done');
  });

  it('gives up within its deadline when the API server does not answer', async () => {
    const api = fakeApi().get(POD).delay(5000).reply(200, podObject('default', 'kubecon'));
    const { handler } = handlerWith();
    const started = Date.now();
    // FUNC_TIMEOUT of 1 s: the handler stops itself 100 ms before it
    const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext(1));
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 1000, `answered after ${elapsed} ms`);
    assert.equal(answer.status, 'failed');
    assert.match(
      String(answer.error),
      /^get the pod 'kubecon' in the namespace 'default' did not finish before the function's deadline \((9\d\d|8\d\d) ms were left for it\)$/,
    );
    nock.abortPendingRequests();
    api.done();
  });
});

/**
 * What the client believes of the API server's answers: an answer over the size cap is not read to its end, and a
 * 404 or 409 is taken for our own lost write only after an attempt that may have been carried out (never after a 429,
 * which the API server answers before doing anything).
 */
import { strict as assert } from 'assert';
import * as http from 'http';
import type { AddressInfo } from 'net';
import nock from 'nock';
import deletePod from '../../functions/delete-pod/action';
import networkIsolate from '../../functions/network-isolate/action';
import { KubeClient, MAX_ANSWER_BYTES } from '../../lib/kube/client';
import { KubeApiError, isApiStatusAfterPossiblyAppliedAttempt } from '../../lib/kube/errors';
import { apiPath } from '../../lib/kube/refs';
import { fakeApi, handlerFor, podObject, policyStored, status, testKube } from '../helpers/fake-cluster';
import { alert, kubelessContext, kubelessEvent } from '../helpers/fixtures';
import { actionCases, alertHandled, bodyWith, DELETE, GET, PATCH, POST, PUT, STORED, TARGET } from '../helpers/action-cases';

const POD = apiPath`/api/v1/namespaces/default/pods/kubecon`;
const EVENTS = '/api/v1/namespaces/default/events';
const POLICIES = '/apis/networking.k8s.io/v1/namespaces/default/networkpolicies';
const POLICY = `${POLICIES}/falco-response-quarantine`;
const QUARANTINE = 'falco-response.io/quarantine';
const TOO_MANY = status(429, 'TooManyRequests', 'too many requests, please try again later');

const ALL = { RULES: '*' };
const NOT_FOUND = status(404, 'NotFound', 'pods "kubecon" not found');
const DELETED_TOUCHED = [{ kind: 'Pod', namespace: 'default', name: 'kubecon', changed: true }];
/** The policy restored or left as it was, and the pod labelled only when the policy was not touched (these cases). */
const policyTouched = (policyChanged: boolean) => [
  { kind: 'NetworkPolicy', namespace: 'default', name: 'falco-response-quarantine', changed: policyChanged },
  { kind: 'Pod', namespace: 'default', name: 'kubecon', changed: !policyChanged },
];

describe('a 404 or 409 after a retry is our own lost write only when an earlier attempt may have been carried out', () => {
  actionCases(deletePod, [
    {
      // The API server's rate limit refuses the first DELETE before doing anything; by the retry the pod is gone.
      // No POST of an Event (an unmatched POST would be a logged audit failure, and the answer done)
      title: 'delete-pod: DELETE 429 then 404: someone else deleted the pod; skipped "already deleted", no done, no Event',
      env: ALL,
      calls: [GET(POD, [200, podObject('default', 'kubecon')]), DELETE(POD, [429, TOO_MANY, { 'Retry-After': '0' }]), DELETE(POD, [404, NOT_FOUND])],
      answer: { status: 'skipped', code: 'pod-gone', reason: "the pod 'kubecon' in the namespace 'default' is already deleted", target: TARGET },
      log: [
        alertHandled('info', { outcome: 'skipped', code: 'pod-gone', reason: "the pod 'kubecon' in the namespace 'default' is already deleted" }),
      ],
    },
    {
      title: 'delete-pod: DELETE 503 then 404: the first attempt may have deleted it; done, with the lost answer said, and audited',
      env: ALL,
      calls: [
        GET(POD, [200, podObject('default', 'kubecon')]),
        DELETE(POD, [503, status(503, 'ServiceUnavailable', 'etcd leader changed')]),
        DELETE(POD, [404, NOT_FOUND]),
        POST(EVENTS, STORED, { body: bodyWith({ reason: 'FalcoResponseDeleted' }) }),
      ],
      answer: {
        status: 'done',
        action: 'delete-pod',
        target: TARGET,
        dryRun: false,
        message: "deleted the pod 'kubecon' in the namespace 'default' (grace period 1 s; the answer to an earlier attempt was lost, and the retry found the pod gone)",
        details: { touched: DELETED_TOUCHED, changed: true, eventRecorded: 'queued', owner: 'none' },
      },
    },
  ]);

  actionCases(networkIsolate, [
    {
      title: 'network-isolate: create 429 then 409: someone else created the policy; reported as found in place, not as created',
      env: ALL,
      calls: [
        GET(POD, [200, podObject('default', 'kubecon')]),
        GET(POLICY, [404, status(404, 'NotFound', 'not found')]),
        POST(POLICIES, [429, TOO_MANY, { 'Retry-After': '0' }]),
        POST(POLICIES, [409, status(409, 'AlreadyExists', 'networkpolicies.networking.k8s.io "falco-response-quarantine" already exists')]),
        GET(POLICY, [200, policyStored()]),
        PATCH(POD, [200, podObject('default', 'kubecon')]),
        POST(EVENTS, STORED, { body: (body: { message?: string }) => body.message?.includes("the NetworkPolicy 'falco-response-quarantine' is as configured") === true }),
      ],
      answer: {
        status: 'done',
        action: 'network-isolate',
        target: TARGET,
        dryRun: false,
        message: `isolated the pod 'kubecon' in the namespace 'default': the NetworkPolicy 'falco-response-quarantine' is as configured; labelled the pod ${QUARANTINE}=true`,
        details: { touched: policyTouched(false), policy: 'falco-response-quarantine', policyStep: 'unchanged', labelled: true, changed: true, eventRecorded: 'queued' },
      },
    },
    {
      // The pod already carries the label; the policy drifted (allows all ingress); the first PUT restored it
      // but its answer was a 503, so the retry's resourceVersion is stale
      title: 'network-isolate: a restoring PUT answered 503, retried into 409, then found restored: reported as restored and audited, not "already isolated"',
      env: ALL,
      calls: [
        GET(POD, [200, podObject('default', 'kubecon', { labels: { app: 'web', [QUARANTINE]: 'true' } })]),
        GET(POLICY, [200, { ...policyStored(), spec: { ...policyStored().spec, ingress: [{}] } }]),
        PUT(POLICY, [503, status(503, 'ServiceUnavailable', 'etcd leader changed')]),
        PUT(POLICY, [409, status(409, 'Conflict', 'the object has been modified; please apply your changes to the latest version and try again')]),
        GET(POLICY, [200, { ...policyStored(), metadata: { ...policyStored().metadata, resourceVersion: '4243' } }]),
        POST(EVENTS, STORED, { body: bodyWith({ reason: 'FalcoResponseIsolated' }) }),
      ],
      answer: {
        status: 'done',
        action: 'network-isolate',
        target: TARGET,
        dryRun: false,
        message:
          "isolated the pod 'kubecon' in the namespace 'default': restored the NetworkPolicy 'falco-response-quarantine' (it had drifted from its " +
          `configuration; the answer to an earlier attempt was lost, and the retry found it restored); the pod already carried ${QUARANTINE}=true`,
        details: { touched: policyTouched(true), policy: 'falco-response-quarantine', policyStep: 'restored', labelled: false, changed: true, eventRecorded: 'queued' },
      },
    },
  ]);
});

describe('KubeClient: which earlier attempts may have been carried out', () => {
  const OP = { verb: 'delete', resource: 'pods', group: '', object: "the pod 'kubecon' in the namespace 'default'" };
  const NOT_FOUND = status(404, 'NotFound', 'pods "kubecon" not found');
  const cases: readonly { readonly first: string; readonly reply: (scope: nock.Interceptor) => nock.Scope; readonly applied: boolean }[] = [
    { first: '429 (the rate limit answers before doing anything)', reply: (i) => i.reply(429, TOO_MANY, { 'Retry-After': '0' }), applied: false },
    { first: '500', reply: (i) => i.reply(500, status(500, 'InternalError', 'etcdserver: request timed out')), applied: true },
    { first: '502', reply: (i) => i.reply(502, 'Bad Gateway'), applied: true },
    { first: '503', reply: (i) => i.reply(503, status(503, 'ServiceUnavailable', 'etcd leader changed')), applied: true },
    { first: '504', reply: (i) => i.reply(504, 'Gateway Timeout'), applied: true },
    { first: 'a reset after the request was sent', reply: (i) => i.replyWithError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })), applied: true },
  ];
  for (const c of cases) {
    it(`${c.first}, then 404: earlierAttemptMayHaveApplied is ${String(c.applied)}`, async () => {
      // Given
      const scope = c.reply(fakeApi().delete(POD));
      scope.delete(POD).reply(404, NOT_FOUND);

      // When
      const error = await testKube().request({ method: 'DELETE', path: POD, op: OP }, Date.now() + 5000).then(
        () => assert.fail('no error'),
        (e: unknown) => e,
      );

      // Then
      scope.done();
      assert.ok(error instanceof KubeApiError, String(error));
      assert.equal(error.earlierAttemptMayHaveApplied, c.applied);
      assert.equal(isApiStatusAfterPossiblyAppliedAttempt(error, 404), c.applied);
    });
  }
});

describe('answers over the size cap are not read to their end', () => {
  /** A local API server whose every answer is `size` bytes of spaces, made as they are sent; it counts what it wrote. */
  async function hugeAnswerServer(size: number, announce: boolean) {
    const chunk = Buffer.alloc(64 * 1024, ' ');
    const stats = { written: 0, requests: [] as string[] };
    const server = http.createServer((req, res) => {
      stats.requests.push(`${req.method ?? ''} ${req.url ?? ''}`);
      res.writeHead(200, { 'Content-Type': 'application/json', ...(announce ? { 'Content-Length': String(size) } : {}) });
      const pump = () => {
        while (stats.written < size && !res.destroyed) {
          const n = Math.min(chunk.length, size - stats.written);
          stats.written += n;
          if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void res.once('drain', pump);
        }
        if (!res.destroyed) res.end();
      };
      pump();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const kube = new KubeClient(
      {
        server: new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
        insecureSkipTlsVerify: false,
        bearerToken: () => Promise.resolve('t'),
        source: 'a test token',
      },
      { attempts: 4, baseDelayMs: 5, maxDelayMs: 50 },
    );
    const close = () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
    return { kube, stats, close };
  }

  before(() => nock.enableNetConnect('127.0.0.1'));
  after(() => nock.disableNetConnect());

  for (const announce of [false, true]) {
    it(`a 200 MB answer to GET pod (${announce ? 'announced by Content-Length' : 'chunked, no length'}): failed with the cap, not retried, the connection dropped`, async () => {
      // Given
      const size = 200 * 1024 * 1024;
      const { kube, stats, close } = await hugeAnswerServer(size, announce);
      const rssBefore = process.memoryUsage().rss;

      // When
      const { handler } = handlerFor(deletePod, { RULES: '*' }, { kube });
      const answer = await handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext()).finally(close);

      // Then
      const grownMb = (process.memoryUsage().rss - rssBefore) / 1024 / 1024;
      process.stdout.write(`      RSS grew by ${grownMb.toFixed(1)} MB; the server wrote ${(stats.written / 1024 / 1024).toFixed(1)} MB of ${size / 1024 / 1024} MB\n`);
      const what = announce ? `its Content-Length is ${size}` : 'no Content-Length; reading stopped at the limit';
      assert.deepEqual(answer, {
        status: 'failed',
        error: `get the pod 'kubecon' in the namespace 'default' failed: the API server's answer is over the limit of ${MAX_ANSWER_BYTES} bytes on answers (${what})`,
        target: { namespace: 'default', pod: 'kubecon' },
      });
      assert.deepEqual(stats.requests, [`GET ${POD}`]);
      // Bounds far above the cap: they catch reading on to the end (200 MB), not a few buffers more or less.
      assert.ok(stats.written < 64 * 1024 * 1024, `the server could write ${stats.written} bytes`);
    });
  }
});

describe('a request body that cannot be written as JSON', () => {
  // The answer as read is PUT back whole; JSON.parse reads any depth, JSON.stringify overflows its stack. The write is
  // never sent, and the message says so
  const depth = 1_000_000;
  const stored = JSON.stringify({ ...policyStored(), spec: { podSelector: {} } });
  const deep = `${stored.slice(0, -1)},"x":${'['.repeat(depth)}${']'.repeat(depth)}}`;
  actionCases(networkIsolate, [
    {
      title: 'network-isolate: a policy read with 1,000,000 nested lists in an unknown field is not PUT back: failed once, not "could not reach"',
      env: ALL,
      calls: [GET(POD, [200, podObject('default', 'kubecon')]), GET(POLICY, [200, deep, { 'Content-Type': 'application/json' }])],
      answer: {
        status: 'failed',
        error:
          `the pod 'kubecon' in the namespace 'default' was not isolated and not labelled ${QUARANTINE}=true, because the NetworkPolicy ` +
          "'falco-response-quarantine' in the namespace 'default' could not be put in place: update the NetworkPolicy 'falco-response-quarantine' " +
          "in the namespace 'default' failed: its body cannot be written as JSON (RangeError: Maximum call stack size exceeded), so it was not sent",
        target: TARGET,
      },
    },
  ]);
});

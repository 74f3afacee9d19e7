import { strict as assert } from 'assert';
import nock from 'nock';
import type { Action, PodAction } from '../../lib/action';
import type { ParamSpecs } from '../../lib/params';
import type { KubelessHandler, RunnerOptions } from '../../lib/runner';
import deletePod from '../../functions/delete-pod/action';
import { memoryLogger } from '../../lib/log';
import { actionHandler, podActionHandler } from '../helpers/recorded-handler';
import { API_SERVER, fakeApi, serveApi, serveCluster, status, testKube } from '../helpers/fake-cluster';
import { alert, AUTHORIZED, kubelessContext, kubelessEvent, scheduledPodObject, TEST_SECRET } from '../helpers/fixtures';
import { MemoryCluster, type Reply } from '../helpers/memory-cluster';
import { auditObjectActions, nodeActions, podActions, type NodeAction } from '../helpers/pod-actions';
import { nodeObject } from '../helpers/fixtures';

const POD = 'kubecon';
/** testKube() makes this many attempts at a call that keeps failing with a retried status or a broken connection. */
const ATTEMPTS = 4;
/** FUNC_TIMEOUT for the slow cases: the handler promises an answer within it (shared/PROTOCOLS.md section 1). */
const SHORT_TIMEOUT_SECONDS = 1;

/**
 * Each case's functions run in a namespace of their own, `<namespace>-own` (where capture-evidence keeps its Secrets),
 * so that the cases of one fault stay apart there too: requests to it are routed to the case of `<namespace>`.
 */
const ownNamespaceOf = (namespace: string) => `${namespace}-own`;
const namespaceOf = (path: string) => (/\/namespaces\/([^/]+)\//.exec(path)?.[1] ?? '').replace(/-own$/, '');
/** The path with its namespaces (and the node named after it) made generic, so that calls of cases in different namespaces compare. */
const generic = (path: string, namespace: string) =>
  path
    .split(`/namespaces/${ownNamespaceOf(namespace)}/`)
    .join('/namespaces/{own}/')
    .split(`/namespaces/${namespace}/`)
    .join('/namespaces/{ns}/')
    .split(`/nodes/${nodeOf(namespace)}`)
    .join('/nodes/{node}');
/** Each case's pod runs on a node of its own, named after its namespace: node actions' calls are told apart too. */
const nodeOf = (namespace: string) => `node-${namespace}`;
const nodePath = '/api/v1/nodes/{node}';

/**
 * The case a call belongs to: its namespace (or its own namespace's), or the namespace its node is named after; a
 * node's Event goes in `default` (lib/kube/events.ts), and names its node.
 */
function caseOf(path: string, body: unknown): string {
  const node = /^\/api\/v1\/nodes\/node-([^/?]+)/.exec(path)?.[1];
  if (node !== undefined) return node;
  const about = (body as { involvedObject?: { kind?: string; name?: string } } | undefined)?.involvedObject;
  if (namespaceOf(path) === 'default' && about?.kind === 'Node' && about.name?.startsWith('node-') === true) return about.name.slice('node-'.length);
  return namespaceOf(path);
}

/** The case's pod, on its node. */
function addTarget(cluster: MemoryCluster, namespace: string): MemoryCluster {
  return cluster.add(scheduledPodObject(namespace, POD, nodeOf(namespace))).add(nodeObject(nodeOf(namespace)));
}

const podPath = '/api/v1/namespaces/{ns}/pods/kubecon';

/** A terminal-shell alert about the case's pod. */
function alertIn(namespace: string) {
  const a = alert('terminal-shell');
  a.output_fields['k8s.ns.name'] = namespace;
  return a;
}

type AnyAction = PodAction | NodeAction | Action<ParamSpecs, 'audit-object'>;

/** What an action acts on in the namespace of a case: the alert naming it, the object in the cluster, the answer's target. */
interface Subject {
  alertIn(namespace: string): Record<string, unknown>;
  seed(cluster: MemoryCluster, namespace: string): void;
  /** The answer's target when the case's step `step` fails (a node action names the node once it was read). */
  target(namespace: string, step?: number): Record<string, string>;
  /** The paths read (their namespace and node made generic), each with the skip code when it is found gone; the last is read first. */
  readonly gone: readonly { readonly path: string; readonly code: string }[];
}

const POD_SUBJECT: Subject = {
  alertIn,
  seed: addTarget,
  target: (namespace) => ({ namespace, pod: POD }),
  gone: [{ path: podPath, code: 'pod-gone' }],
};

/** The node of the case's pod: read after the pod, so a node action names it from the third step on. */
const NODE_SUBJECT: Subject = {
  alertIn,
  seed: addTarget,
  target: (namespace, step = 0) => (step > 1 ? { namespace, pod: POD, node: nodeOf(namespace) } : { namespace, pod: POD }),
  gone: [
    { path: nodePath, code: 'node-gone' },
    { path: podPath, code: 'pod-gone' },
  ],
};

/** A Secret a k8s_audit alert names, created before the alert (delete-object tells it is the event's by that). */
const OBJECT_SUBJECT: Subject = {
  alertIn(namespace) {
    const a = alert('k8saudit-serviceaccount-created');
    a.output_fields = { 'ka.target.resource': 'secrets', 'ka.target.namespace': namespace, 'ka.target.name': 'stolen-token', 'ka.verb': 'create' };
    return a;
  },
  seed: (cluster, namespace) =>
    cluster.add({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'stolen-token', namespace, uid: `uid-${namespace}`, resourceVersion: '7', creationTimestamp: '2023-05-10T14:00:00Z' } }),
  target: (namespace) => ({ resource: 'secrets', namespace, name: 'stolen-token' }),
  gone: [{ path: '/api/v1/namespaces/{ns}/secrets/stolen-token', code: 'object-gone' }],
};

/** Every action, with what it acts on. */
const SUBJECTS: readonly { readonly action: AnyAction; readonly subject: Subject }[] = [
  ...podActions().map((action) => ({ action, subject: POD_SUBJECT })),
  ...nodeActions().map((action) => ({ action, subject: NODE_SUBJECT })),
  ...auditObjectActions().map((action) => ({ action, subject: OBJECT_SUBJECT })),
];

/** Its handler, answering once its queued Events are recorded (the runner is generic over the kind: a union is narrowed here). */
function handlerOf(action: AnyAction, options: RunnerOptions): KubelessHandler {
  if (action.kind === 'pod-action') return actionHandler(action, options);
  if (action.kind === 'node-action') return actionHandler(action, options);
  return actionHandler(action, options);
}

/** Every rule, so that each action acts on the fixture whatever its default RULES; cordon-node taints too (its fullest path: a guarded write). */
function handlerFor(action: AnyAction, namespace: string, log = memoryLogger()) {
  const options = { env: { RULES: '*', TAINT_EFFECT: 'NoSchedule', INBOUND_SECRET: TEST_SECRET }, kube: testKube(), log, ownNamespace: ownNamespaceOf(namespace) };
  return { handler: handlerOf(action, options), log };
}

async function handle(action: AnyAction, subject: Subject, namespace: string, timeoutSeconds = 30) {
  const { handler, log } = handlerFor(action, namespace);
  const { event, response } = kubelessEvent(subject.alertIn(namespace), undefined, AUTHORIZED);
  const started = Date.now();
  const answer = await handler(event, kubelessContext(timeoutSeconds));
  return { answer, status: response.statusCode, log: log.lines, elapsed: Date.now() - started };
}

/** Its answer with the namespace made generic. */
const genericAnswer = (answer: unknown, namespace: string) => JSON.parse(JSON.stringify(answer).split(namespace).join('{ns}'));

/** The calls an action makes on a healthy cluster, in order, and what it answers there. */
async function healthyRun(action: AnyAction, subject: Subject): Promise<{ script: string[]; answer: Record<string, unknown> }> {
  // As long a name as the cases' `step-<n>`: capture-evidence's answer says how many bytes it saved, names included.
  const namespace = 'step-h';
  const cluster = new MemoryCluster();
  subject.seed(cluster, namespace);
  serveCluster(cluster);
  const { answer } = await handle(action, subject, namespace);
  nock.cleanAll();
  return { script: cluster.take().map((c) => `${c.method} ${generic(c.path, namespace)}`), answer: genericAnswer(answer, namespace) };
}

/** nock 14 emits only an Error instance; the client reports its code. */
const socketError = (code: string) => Object.assign(new Error(code === 'ECONNRESET' ? 'socket hang up' : code), { code });

function sleep(ms: number): Promise<void> {
  // unref: a reply still waiting when its test is over must not hold mocha open
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

interface Fault {
  readonly name: string;
  /** The reply to the n-th attempt at the faulty step, or undefined to let the healthy cluster answer it. */
  reply(attempt: number, healthy: () => Reply): Reply | Promise<Reply> | undefined;
  /** How the answer must read: as on a healthy cluster, or failed with this cause after so many attempts. */
  readonly expect: 'as-healthy' | 'not-found' | { readonly cause: string | RegExp; readonly attempts: number };
  /** For 'not-found': the attempts at the faulty step (a 404 itself is never retried). */
  readonly attempts?: number;
  readonly timeoutSeconds?: number;
}

const FAULTS: readonly Fault[] = [
  {
    name: '429 with Retry-After: 0, once',
    reply: (n) => (n === 1 ? [429, status(429, 'TooManyRequests', 'too many requests, please try again later'), { 'Retry-After': '0' }] : undefined),
    expect: 'as-healthy',
  },
  {
    name: '503, once',
    reply: (n) => (n === 1 ? [503, status(503, 'ServiceUnavailable', 'etcd leader changed')] : undefined),
    expect: 'as-healthy',
  },
  {
    name: '500 with a JSON null body, once',
    reply: (n) => (n === 1 ? [500, 'null', { 'Content-Type': 'application/json' }] : undefined),
    expect: 'as-healthy',
  },
  {
    name: 'connection reset, once',
    reply: (n) => {
      if (n === 1) throw socketError('ECONNRESET');
      return undefined;
    },
    expect: 'as-healthy',
  },
  {
    name: '500 at every attempt (retries exhausted)',
    reply: () => [500, status(500, 'InternalError', 'etcdserver: request timed out')],
    expect: { cause: 'the API server answered 500 InternalError: etcdserver: request timed out (after 4 attempt(s))', attempts: ATTEMPTS },
  },
  {
    name: '500 with a JSON null body at every attempt',
    reply: () => [500, 'null', { 'Content-Type': 'application/json' }],
    expect: { cause: 'the API server answered 500: Internal Server Error (after 4 attempt(s))', attempts: ATTEMPTS },
  },
  {
    name: 'connection reset at every attempt',
    reply: () => {
      throw socketError('ECONNRESET');
    },
    expect: { cause: `could not reach the API server at ${API_SERVER}: ECONNRESET (after 4 attempt(s))`, attempts: ATTEMPTS },
  },
  {
    name: '429 with a Retry-After past the deadline',
    reply: () => [429, status(429, 'TooManyRequests', 'too many requests, please try again later'), { 'Retry-After': '120' }],
    expect: {
      cause:
        'the API server answered 429 TooManyRequests: too many requests, please try again later ' +
        '(after 1 attempt(s); no time left to retry before the deadline (Retry-After asked for 120 s))',
      attempts: 1,
    },
  },
  {
    name: '403 Forbidden',
    reply: () => [403, status(403, 'Forbidden', 'forbidden by RBAC')],
    expect: { cause: /the API server answered 403 Forbidden: forbidden by RBAC \(the function's ServiceAccount lacks the permission '(\w+)' on '([^']+)': declare it in the action's permissions and apply the regenerated ClusterRole from manifests\/\)/, attempts: 1 },
  },
  {
    name: 'a response slower than the deadline',
    reply: async (_n, healthy) => {
      await sleep(SHORT_TIMEOUT_SECONDS * 1000 + 2000);
      return healthy();
    },
    expect: { cause: /did not finish before the function's deadline \(\d+ ms were left for it\)/, attempts: 1 },
    timeoutSeconds: SHORT_TIMEOUT_SECONDS,
  },
  {
    name: '404 Not Found (the object vanished between steps)',
    reply: () => [404, status(404, 'NotFound', 'not found')],
    expect: 'not-found',
  },
  {
    // A 429 is answered before anything is done: the 404 after it reports someone else's doing, never our own write.
    name: '429, then 404 Not Found (the object vanished while the call was rate-limited)',
    reply: (n) => (n === 1 ? [429, status(429, 'TooManyRequests', 'too many requests, please try again later'), { 'Retry-After': '0' }] : [404, status(404, 'NotFound', 'not found')]),
    expect: 'not-found',
    attempts: 2,
  },
];

/** One fault at one step of the script: routes its namespace's requests, counts attempts at the faulty step. */
class FaultCase {
  private next = 0;
  private passed = false;
  attempts = 0;
  readonly calls: string[] = [];

  constructor(
    readonly namespace: string,
    private readonly script: readonly string[],
    readonly step: number,
    private readonly fault: Fault,
    readonly cluster: MemoryCluster,
  ) {}

  answer(method: string, path: string, body: unknown): Reply | Promise<Reply> {
    const call = `${method} ${generic(path, this.namespace)}`;
    this.calls.push(call);
    const healthy = () => this.cluster.answer(method, path, body);
    let index = this.next;
    while (index < this.script.length && this.script[index] !== call) index++;
    if (index === this.script.length) {
      // A retry of the faulty step after calls made alongside it (capture-evidence reads its logs at once) moved on.
      if (!this.passed && this.attempts > 0 && call === this.script[this.step]) return this.faulty(healthy);
      return healthy(); // off the script (a re-read after a conflict): the cluster answers
    }
    this.next = index;
    if (index === this.step) {
      const injected = this.faulty(healthy);
      if (injected !== undefined) return injected;
    }
    this.next = index + 1;
    return healthy();
  }

  /** An attempt at the faulty step: the fault's reply, or the cluster's once the fault lets it through. */
  private faulty(healthy: () => Reply): Reply | Promise<Reply> {
    this.attempts++;
    const injected = this.fault.reply(this.attempts, healthy);
    if (injected !== undefined) return injected;
    this.passed = true;
    return healthy();
  }
}

/** What is wrong with one case's answer; empty when it is right. */
function problemsOf(
  action: AnyAction,
  subject: Subject,
  fault: Fault,
  run: FaultCase,
  script: readonly string[],
  healthy: Record<string, unknown>,
  result: Awaited<ReturnType<typeof handle>>,
): string[] {
  const problems: string[] = [];
  const check = (condition: boolean, what: string) => {
    if (!condition) problems.push(what);
  };
  const { answer, log } = result;
  const ns = run.namespace;
  const faulty = script[run.step];
  const error = typeof answer.error === 'string' ? answer.error : '';
  check(!error.startsWith('internal error'), `an internal error: ${error}`);
  check(result.status === (answer.status === 'failed' ? 500 : 200), `HTTP ${result.status} for ${String(answer.status)}`);
  const timeout = (fault.timeoutSeconds ?? 30) * 1000;
  check(result.elapsed < timeout, `answered after ${result.elapsed} ms, past FUNC_TIMEOUT (${timeout} ms)`);

  if (fault.expect === 'as-healthy') {
    check(JSON.stringify(genericAnswer(answer, ns)) === JSON.stringify(healthy), `answered ${JSON.stringify(answer)}`);
    check(run.attempts === 2, `${run.attempts} attempts at the faulty step, expected 2`);
    return problems;
  }
  if (fault.expect === 'not-found') {
    const gone = subject.gone.find((g) => faulty.endsWith(` ${g.path}`));
    if (gone?.code === 'node-gone') {
      check(answer.status === 'skipped' && answer.code === 'node-gone', `a 404 on the node answered ${JSON.stringify(answer)}, not skipped node-gone`);
      // Node Events of every case share default: this case's are those about its node.
      const nodeEvents = run.cluster.under('/api/v1/namespaces/default/events/').filter((e) => (e.involvedObject as { name?: string }).name === nodeOf(ns));
      const events = [...run.cluster.under(`/api/v1/namespaces/${ns}/events/`), ...nodeEvents];
      check(events.length === 0, `an Event claims a change the action did not make: ${JSON.stringify(events.map((e) => e.reason))}`);
    } else if (gone !== undefined) {
      check(answer.status === 'skipped' && answer.code === gone.code, `a 404 on the target answered ${JSON.stringify(answer)}, not skipped ${gone.code}`);
      check(JSON.stringify(answer.target) === JSON.stringify(subject.target(ns, run.step)), 'no target');
      const events = run.cluster.under(`/api/v1/namespaces/${ns}/events/`);
      check(events.length === 0, `an Event claims a change the action did not make: ${JSON.stringify(events.map((e) => e.reason))}`);
    } else if (answer.status === 'failed') {
      check(error.includes('the API server answered 404 NotFound: not found'), `the cause is not named: ${error}`);
    }
    const attempts = fault.attempts ?? 1;
    check(run.attempts === attempts, `${run.attempts} attempts at the faulty step, expected ${attempts} (a 404 is never retried)`);
    return problems;
  }

  const { cause, attempts } = fault.expect;
  const named = (text: string) => (typeof cause === 'string' ? text.includes(cause) : cause.test(text));
  check(run.attempts === attempts, `${run.attempts} attempts at the faulty step, expected ${attempts}`);
  if (answer.status === 'failed') {
    check(named(error), `the cause is not named: ${error}`);
    check(error.includes(`in the namespace '${ns}'`) || error.includes(`the node '${nodeOf(ns)}'`), `the object is not named: ${error}`);
    check(JSON.stringify(answer.target) === JSON.stringify(subject.target(ns, run.step)), `no target: ${JSON.stringify(answer)}`);
    const later = script.slice(run.step + 1);
    const storm = run.calls.filter((c) => later.includes(c) && c !== faulty);
    check(storm.length === 0, `went on after the failure: ${storm.join(', ')}`);
    const permission = cause instanceof RegExp ? cause.exec(error) : null;
    if (permission !== null && permission[1] !== undefined && permission[2] !== undefined) {
      const [verb, resource] = [permission[1], permission[2]];
      const declared = [...action.permissions, ...(action.ownNamespacePermissions ?? [])].some(
        (p) => (p.apiGroup === '' ? p.resource : `${p.resource}.${p.apiGroup}`) === resource && p.verbs.includes(verb),
      );
      check(declared, `the 403 names '${verb}' on '${resource}', which the action does not declare`);
    }
  } else {
    // A best-effort step (the audit Event): the action's work is done, and the failure is logged with its cause.
    check(answer.status === healthy.status, `answered ${JSON.stringify(answer)}`);
    // Naming the object: in the case's namespace, in its own (capture-evidence's retention of old Secrets), or its node.
    const objectNamed = (text: string) => [`'${ns}'`, `'${ownNamespaceOf(ns)}'`, `'${nodeOf(ns)}'`].some((n) => text.includes(n));
    const warned = log.some((l) => l.level === 'warn' && named(JSON.stringify(l.error ?? '')) && objectNamed(JSON.stringify(l.error ?? '')));
    check(warned, `a best-effort failure with no warning naming the object and the cause: ${JSON.stringify(log)}`);
  }
  return problems;
}

describe('faults at every step of every action (strict nock, a real KubeClient)', () => {
  it('covers the pod, node and audit-object actions', () => {
    assert.ok(SUBJECTS.some(({ action }) => action.name === 'delete-pod'));
    assert.ok(SUBJECTS.some(({ action, subject }) => action.name === 'cordon-node' && subject === NODE_SUBJECT));
    assert.ok(SUBJECTS.some(({ action }) => action.name === 'delete-object'));
  });

  for (const { action, subject } of SUBJECTS) {
    describe(action.name, () => {
      let script: string[];
      let healthy: Record<string, unknown>;

      before(async () => {
        ({ script, answer: healthy } = await healthyRun(action, subject));
      });

      it('acts on a healthy cluster (the script the faults are injected into)', () => {
        assert.equal(healthy.status, 'done', JSON.stringify(healthy));
        assert.equal(script[0], `GET ${subject.gone[subject.gone.length - 1].path}`);
        assert.ok(script.length >= 2, script.join(', '));
      });

      for (const fault of FAULTS) {
        it(`${fault.name}, at each step: answered with the object and the cause, within the deadline`, async () => {
          // Given: one namespace per step, each with its pod, all served at once
          const cluster = new MemoryCluster();
          const cases = script.map((_, step) => {
            const namespace = `step-${step}`;
            subject.seed(cluster, namespace);
            return new FaultCase(namespace, script, step, fault, cluster);
          });
          serveApi((method, path, body) => {
            const run = cases.find((c) => c.namespace === caseOf(path, body));
            return run === undefined ? [599, `no case for ${path}`] : run.answer(method, path, body);
          });

          // When
          const results = await Promise.all(cases.map((c) => handle(action, subject, c.namespace, fault.timeoutSeconds)));

          // Then
          const problems = cases.flatMap((run, i) =>
            problemsOf(action, subject, fault, run, script, healthy, results[i]).map((p) => `step ${run.step + 1} (${script[run.step]}): ${p}`),
          );
          nock.abortPendingRequests();
          assert.deepEqual(problems, []);
        });
      }

      it('ten concurrent alerts for the same target: no failure, the same end state as one alert', async () => {
        // Given
        const once = new MemoryCluster();
        const many = new MemoryCluster();
        subject.seed(once, 'once');
        subject.seed(many, 'many');
        serveApi((method, path, body) => (caseOf(path, body) === 'once' ? once : many).answer(method, path, body));
        await handle(action, subject, 'once');

        // When
        const results = await Promise.all(Array.from({ length: 10 }, () => handle(action, subject, 'many')));

        // Then
        const failed = results.filter((r) => r.answer.status === 'failed' || r.status !== 200).map((r) => JSON.stringify(r.answer));
        assert.deepEqual(failed, []);
        // A Secret's data decoded, so that the namespace written in them compares as the rest does.
        const decoded = (object: Record<string, unknown>) =>
          object.kind !== 'Secret' ? object : { ...object, data: Object.fromEntries(Object.entries(object.data as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')])) };
        const state = (cluster: MemoryCluster, ns: string) =>
          [...cluster.objects]
            .filter(([path]) => !path.includes('/events/'))
            .map(([path, object]) => genericAnswer({ path, object: { ...decoded(object), metadata: { ...object.metadata, resourceVersion: undefined } } }, ns));
        assert.deepEqual(state(many, 'many'), state(once, 'once'));
        const done = results.filter((r) => r.answer.status === 'done').length;
        assert.ok(many.under('/api/v1/namespaces/many/events/').length <= done, 'more audit events than actions done');
      });
    });
  }
});

describe('delete-pod under faults: the exact words an operator reads', () => {
  const POD_PATH = '/api/v1/namespaces/default/pods/kubecon';
  const handler = () => podActionHandler(deletePod, { env: {}, kube: testKube(), log: memoryLogger(), ownNamespace: 'falco-response' });
  const run = async (timeoutSeconds = 30) => {
    const { event, response } = kubelessEvent(alert('terminal-shell'));
    const answer = await handler()(event, kubelessContext(timeoutSeconds));
    return { answer, status: response.statusCode };
  };

  it('waits as long as Retry-After says before it retries a 429', async () => {
    // Given
    const cluster = new MemoryCluster().addPod('default', POD).failNext(1, [429, status(429, 'TooManyRequests', 'too many requests'), { 'Retry-After': '1' }]);
    serveCluster(cluster);

    // When
    const { answer } = await run();

    // Then
    assert.equal(answer.status, 'done');
    const times = cluster.take().map((c) => c.at);
    assert.ok(times[1] - times[0] >= 990, `retried after ${times[1] - times[0]} ms`);
  });

  it('says how many attempts it made and the last cause when retries run out (503 four times)', async () => {
    const api = fakeApi().get(POD_PATH).times(4).reply(503, status(503, 'ServiceUnavailable', 'etcd leader changed'));
    const { answer, status: code } = await run();
    api.done();
    assert.equal(code, 500);
    assert.deepEqual(answer, {
      status: 'failed',
      error:
        "get the pod 'kubecon' in the namespace 'default' failed: the API server answered 503 ServiceUnavailable: etcd leader changed (after 4 attempt(s))",
      target: { namespace: 'default', pod: 'kubecon' },
    });
  });

  it('names the address and the attempts when the connection keeps being reset', async () => {
    const api = fakeApi().get(POD_PATH).times(4).replyWithError(socketError('ECONNRESET'));
    const { answer } = await run();
    api.done();
    assert.equal(
      answer.error,
      "get the pod 'kubecon' in the namespace 'default' failed: could not reach the API server at https://kube.test:6443: ECONNRESET (after 4 attempt(s))",
    );
  });

  it('says which permission is missing and how to grant it when reading the pod is forbidden (403, not retried)', async () => {
    const api = fakeApi()
      .get(POD_PATH)
      .reply(403, status(403, 'Forbidden', 'pods "kubecon" is forbidden: User "system:serviceaccount:falco-response:delete-pod" cannot get resource "pods"'));
    const { answer } = await run();
    api.done();
    assert.equal(
      answer.error,
      "get the pod 'kubecon' in the namespace 'default' failed: the API server answered 403 Forbidden: pods \"kubecon\" is forbidden: " +
        'User "system:serviceaccount:falco-response:delete-pod" cannot get resource "pods" (the function\'s ServiceAccount lacks the ' +
        "permission 'get' on 'pods': declare it in the action's permissions and apply the regenerated ClusterRole from manifests/)",
    );
  });

  it('ten concurrent alerts for the same pod: one deletion, nine "already deleted", one Event, no retry', async () => {
    // Given
    const cluster = new MemoryCluster().addPod('default', POD);
    serveCluster(cluster);

    // When
    const results = await Promise.all(Array.from({ length: 10 }, () => run()));

    // Then
    const calls = cluster.take().map((c) => `${c.method} ${c.path}`);
    const answers = results.map((r) => r.answer);
    assert.equal(answers.filter((a) => a.status === 'done').length, 1);
    const gone = answers.filter((a) => a.status === 'skipped');
    assert.equal(gone.length, 9);
    for (const a of gone) {
      assert.equal(a.code, 'pod-gone');
      assert.match(String(a.reason), /^the pod 'kubecon' in the namespace 'default' is already (deleted|gone)$/);
    }
    assert.equal(cluster.under('/api/v1/namespaces/default/events/').length, 1);
    assert.equal(calls.filter((c) => c === `DELETE ${POD_PATH}`).length, 10);
    assert.ok(calls.length <= 21, `${calls.length} calls: ${calls.join(', ')}`);
  });

  it('keeps its deadline when FUNC_TIMEOUT is longer than a Node timer can wait (it used to fail every call at once)', async () => {
    // Given
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    serveCluster(new MemoryCluster().addPod('default', POD));

    // When: 100 days
    const { answer } = await run(100 * 24 * 3600).finally(() => process.removeListener('warning', onWarning));

    // Then
    assert.equal(answer.status, 'done', JSON.stringify(answer));
    assert.deepEqual(warnings.map((w) => w.name), []);
  });
});

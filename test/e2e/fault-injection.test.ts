/**
 * Faults of single API calls on the REAL API server, each action's BUILT bundle served by the built runtime under
 * Node 14 and authenticated as its own generated ServiceAccount. A plain-HTTP relay (helpers/proxy.ts FaultRelay)
 * stands between the function and the server: it answers 429, 503 or 500 instead of the server, resets the
 * connection, or stalls past the deadline at the action's write step. The real server itself answers 403 (a binding
 * without the write permission), 409 (ten isolations racing to create one NetworkPolicy) and 404 (the pod deleted
 * between the action's read and its write). After each case the cluster is read back as it really is.
 */
import { strict as assert } from 'assert';
import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { ACTION_CASES, functionExists, QUARANTINE_POLICY, type ActionCase } from './helpers/cases';
import { api, apiOk, createNamespace, createPod, deleteNamespaces, podEvents, readPod, recordedEvents, sharedCluster, uniqueName, waitFor, type Cluster } from './helpers/cluster';
import { clusterRoleRules, DEPLOY_NAMESPACE, ensureDeployed, serviceAccountToken, writeTokenKubeconfig, type Rule } from './helpers/deploy';
import { FaultRelay, type Fault } from './helpers/proxy';
import { ServedFunction, stopAllFunctions } from './helpers/runtime';
import { terminalShellAlert, type FunctionAnswer } from './helpers/sidekick';

/** FUNC_TIMEOUT of every function here: the runner answers a little before it (PROTOCOLS section 1). */
const TIMEOUT_SECONDS = 3;
/** lib/kube/client.ts DEFAULT_RETRY: attempts at a call that keeps failing with a retried status. */
const ATTEMPTS = 4;
const QUARANTINE_LABEL = 'falco-response.io/quarantine';
const RBAC = '/apis/rbac.authorization.k8s.io/v1';

/** A Status as the API server writes it, for the answers the relay gives in its place. */
const status = (code: number, reason: string, message: string) => ({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const describePod = (namespace: string, pod: string) => `the pod '${pod}' in the namespace '${namespace}'`;

/** Where each action writes, the call the faults hit, and what its failure there reads like. */
interface WriteStep {
  readonly action: string;
  readonly method: string;
  /** The path of the write, as a pattern anchored at both ends. */
  path(namespace: string, pod: string): RegExp;
  /** The RBAC verb and resource of the write. */
  readonly verb: string;
  readonly resource: string;
  readonly group: string;
  /** The failed answer's error: `cause` is what the client says about the write. */
  failure(namespace: string, pod: string, cause: string): string;
  /** What the real server answers the retry of a write it already carried out. */
  readonly retryAfterDone: number;
  /** The cluster as it must be when the write never happened. */
  assertUntouched(cluster: Cluster, namespace: string, pod: string, before: any): Promise<void>;
}

const podPath = (namespace: string, pod: string) => new RegExp(`^/api/v1/namespaces/${namespace}/pods/${pod}$`);
const policyCollection = (namespace: string) => `/apis/networking.k8s.io/v1/namespaces/${namespace}/networkpolicies`;

async function assertPodAsBefore(cluster: Cluster, namespace: string, pod: string, before: any): Promise<void> {
  const now = await readPod(cluster, namespace, pod);
  assert.ok(now !== undefined, `${describePod(namespace, pod)} is gone`);
  assert.equal(now.metadata.resourceVersion, before.metadata.resourceVersion, `${describePod(namespace, pod)} was changed`);
}

const WRITE_STEPS: readonly WriteStep[] = [
  {
    action: 'delete-pod',
    method: 'DELETE',
    path: podPath,
    verb: 'delete',
    resource: 'pods',
    group: '',
    failure: (namespace, pod, cause) => `delete ${describePod(namespace, pod)} ${cause}`,
    retryAfterDone: 404,
    assertUntouched: assertPodAsBefore,
  },
  {
    action: 'label-pod',
    method: 'PATCH',
    path: podPath,
    verb: 'patch',
    resource: 'pods',
    group: '',
    failure: (namespace, pod, cause) => `patch ${describePod(namespace, pod)} ${cause}`,
    retryAfterDone: 200,
    assertUntouched: assertPodAsBefore,
  },
  {
    action: 'network-isolate',
    method: 'POST',
    // The policy is created once per namespace: each network-isolate case gets a namespace of its own.
    path: (namespace) => new RegExp(`^${policyCollection(namespace)}$`),
    verb: 'create',
    resource: 'networkpolicies',
    group: 'networking.k8s.io',
    retryAfterDone: 409,
    failure: (namespace, pod, cause) => {
      const policy = `the NetworkPolicy '${QUARANTINE_POLICY}' in the namespace '${namespace}'`;
      return `${describePod(namespace, pod)} was not isolated and not labelled ${QUARANTINE_LABEL}=true, because ${policy} could not be put in place: create ${policy} ${cause}`;
    },
    async assertUntouched(cluster, namespace, pod, before) {
      await assertPodAsBefore(cluster, namespace, pod, before);
      const policies = await apiOk(cluster, { method: 'GET', path: policyCollection(namespace) });
      assert.deepEqual(policies.items, [], `a NetworkPolicy exists in '${namespace}'`);
    },
  },
];

/** A fault at the write step that the client retries past: the action is done as on a healthy cluster. */
interface PassingFault {
  readonly name: string;
  readonly fault: Fault;
  /** What the relay must have seen at the write step: the faulty request, then the retry it forwarded. */
  assertAttempts(first: { at: number }, retry: { at: number }): void;
}

const PASSING_FAULTS: readonly PassingFault[] = [
  {
    name: '429 with Retry-After: 1, once: retried after the second asked for, then done',
    fault: { kind: 'answer', status: 429, headers: { 'Retry-After': '1' }, body: status(429, 'TooManyRequests', 'too many requests, please try again later') },
    assertAttempts(first, retry) {
      // The client promises to honour Retry-After; timers of two processes read the same clock to the millisecond.
      assert.ok(retry.at - first.at >= 990, `retried ${retry.at - first.at} ms after the 429 (Retry-After: 1)`);
    },
  },
  {
    name: '503, once: retried, then done',
    fault: { kind: 'answer', status: 503, body: status(503, 'ServiceUnavailable', 'etcd leader changed') },
    assertAttempts: () => undefined,
  },
  {
    name: 'a connection reset before the request reached the server, once: retried, then done',
    fault: { kind: 'reset' },
    assertAttempts: () => undefined,
  },
];

/** Faults injected by the relay and faults the real server answered, for the summary line. */
const tally = { injected: new Map<string, number>(), real: new Map<number, number>() };
const count = <K>(map: Map<K, number>, key: K, n = 1) => map.set(key, (map.get(key) ?? 0) + n);

describe('e2e: fault injection on single calls to the real API server (built bundles, Node 14, own ServiceAccounts)', function () {
  let cluster: Cluster;
  let relay: FaultRelay;
  let scratch: string;
  /** The namespace of the pod actions' cases; network-isolate's failing or creating cases get fresh ones. */
  let namespace: string;
  const namespaces: string[] = [];
  const functions = new Map<string, ServedFunction>();
  /** Undo steps of RBAC changes still in place: run by the after hook if a test stopped half-way. */
  const rbacUndo = new Map<string, () => Promise<void>>();
  const started = Date.now();

  const caseOf = (name: string): ActionCase => ACTION_CASES.find((c) => c.name === name)!;
  const fn = (name: string): ServedFunction => functions.get(name)!;
  const steps = WRITE_STEPS.filter((s) => functionExists(s.action));

  async function freshNamespace(prefix: string): Promise<string> {
    const name = await createNamespace(cluster, prefix);
    namespaces.push(name);
    return name;
  }

  /** Arms a fault on the requests matching method and path; the returned function disarms it. */
  function inject(method: string, pathPattern: RegExp, fault: (n: number) => Fault | undefined): () => void {
    return relay.inject({ method, path: pathPattern, fault });
  }

  before(async function () {
    cluster = sharedCluster();
    await ensureDeployed(cluster);
    scratch = mkdtempSync(path.join(tmpdir(), 'falco-response-e2e-fault-injection-'));
    relay = await FaultRelay.start(new URL(cluster.server), cluster.ca);
    const names = steps.map((s) => s.action);
    const [shared] = await Promise.all([
      freshNamespace('fault-injection'),
      ...names.map(async (name) => {
        // The relay's plain-HTTP URL as the server, the ServiceAccount's own TokenRequest token as the user.
        const token = await serviceAccountToken(cluster, name);
        const kubeconfig = writeTokenKubeconfig(cluster, path.join(scratch, `${name}.json`), token, relay.url);
        functions.set(name, await ServedFunction.start(name, { env: { KUBECONFIG: kubeconfig, ...caseOf(name).env }, timeoutSeconds: TIMEOUT_SECONDS }));
      }),
    ]);
    namespace = shared;
  });

  after(async function () {
    for (const undo of rbacUndo.values()) await undo();
    await stopAllFunctions();
    if (relay !== undefined) await relay.stop();
    if (cluster !== undefined) await deleteNamespaces(cluster, namespaces);
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
    const injectedKinds = new Set(['answer', 'reset', 'delay', 'lose-answer']);
    for (const r of relay?.requests ?? []) if (r.fault !== undefined && injectedKinds.has(r.fault)) count(tally.injected, r.fault);
    const injected = [...tally.injected].map(([kind, n]) => `${n} ${kind}`).join(', ');
    const real = [...tally.real].map(([code, n]) => `${n}× ${code}`).join(', ');
    process.stdout.write(
      `\n  fault injection: ${[...tally.injected.values()].reduce((a, b) => a + b, 0)} faults injected by the relay (${injected}); ` +
        `${[...tally.real.values()].reduce((a, b) => a + b, 0)} faults answered by the real API server (${real}); ` +
        `${relay?.requests.length ?? 0} requests relayed in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
    );
  });

  afterEach(function () {
    assert.deepEqual(relay.errors, [], 'the relay itself failed');
  });

  /** A pod to act on; network-isolate's gets a namespace with no policy yet, so its write step is the creation. */
  async function target(step: WriteStep, prefix: string): Promise<{ ns: string; pod: string; before: any }> {
    const ns = step.action === 'network-isolate' ? await freshNamespace(`fi-${prefix}`) : namespace;
    const pod = uniqueName(prefix);
    return { ns, pod, before: await createPod(cluster, ns, pod) };
  }

  function assertFailed(answer: FunctionAnswer, ns: string, pod: string, error: string | RegExp): void {
    assert.equal(answer.status, 500, answer.text);
    assert.equal(answer.body.status, 'failed', answer.text);
    assert.deepEqual(answer.body.target, { namespace: ns, pod });
    if (typeof error === 'string') assert.equal(answer.body.error, error);
    else assert.match(answer.body.error, error);
  }

  for (const step of steps) {
    describe(`${step.action}: faults at its write (${step.method} ${step.resource})`, function () {
      for (const passing of PASSING_FAULTS) {
        it(passing.name, async function () {
          // Given
          const { ns, pod } = await target(step, 'retried');
          const write = step.path(ns, pod);
          const disarm = inject(step.method, write, (n) => (n === 1 ? passing.fault : undefined));

          // When
          const answer = await fn(step.action).post(terminalShellAlert(ns, pod));
          disarm();

          // Then: done as on a healthy cluster, and really done
          caseOf(step.action).assertAnswer(answer, ns, pod);
          await caseOf(step.action).assertEffect(cluster, ns, pod);
          const attempts = relay.requestsTo(step.method, write);
          assert.deepEqual(
            attempts.map((r) => [r.fault ?? 'forwarded', r.upstreamStatus]),
            [
              [passing.fault.kind, undefined],
              ['forwarded', step.method === 'POST' ? 201 : 200],
            ],
          );
          passing.assertAttempts(attempts[0], attempts[1]);
        });
      }

      it(`the answer lost after the server acted (connection reset), once: retried (the server answers ${step.retryAfterDone}); done, audited`, async function () {
        // Given: the relay forwards the write, then resets the connection instead of passing the answer on
        const { ns, pod } = await target(step, 'lost');
        const write = step.path(ns, pod);
        const disarm = inject(step.method, write, (n) => (n === 1 ? { kind: 'lose-answer' } : undefined));

        // When
        const answer = await fn(step.action).post(terminalShellAlert(ns, pod));
        disarm();

        // Then: what the function did is reported and audited as done, not as someone else's doing
        assert.deepEqual(
          relay.requestsTo(step.method, write).map((r) => [r.fault ?? 'forwarded', r.upstreamStatus]),
          [
            ['lose-answer', step.method === 'POST' ? 201 : 200],
            ['forwarded', step.retryAfterDone],
          ],
        );
        if (step.action === 'delete-pod') {
          assert.equal(answer.status, 200, answer.text);
          assert.equal(answer.body.status, 'done', answer.text);
          assert.equal(
            answer.body.message,
            `deleted ${describePod(ns, pod)} (grace period 1 s; the answer to an earlier attempt was lost, and the retry found the pod gone)`,
          );
          assert.equal(answer.body.details.eventRecorded, 'queued', answer.text);
        } else if (step.action === 'network-isolate') {
          caseOf(step.action).assertAnswer(answer, ns, pod);
          assert.equal(
            answer.body.message,
            `isolated ${describePod(ns, pod)}: created the NetworkPolicy '${QUARANTINE_POLICY}' (the answer to an earlier attempt was lost, ` +
              `and the retry found it in place); labelled the pod ${QUARANTINE_LABEL}=true`,
          );
          assert.equal(answer.body.details.policyStep, 'created', answer.text);
        } else {
          caseOf(step.action).assertAnswer(answer, ns, pod);
        }
        await caseOf(step.action).assertEffect(cluster, ns, pod);
        const events = await recordedEvents(cluster, ns, pod, caseOf(step.action).eventReason);
        assert.equal(events.length, 1, `one ${caseOf(step.action).eventReason} Event on ${ns}/${pod}`);
        if (step.retryAfterDone !== 200) count(tally.real, step.retryAfterDone);
      });

      it(`500 at every attempt: failed after ${ATTEMPTS} attempts, naming the object; nothing changed`, async function () {
        // Given
        const { ns, pod, before } = await target(step, 'always-500');
        const write = step.path(ns, pod);
        const disarm = inject(step.method, write, () => ({ kind: 'answer', status: 500, body: status(500, 'InternalError', 'etcdserver: request timed out') }));

        // When
        const answer = await fn(step.action).post(terminalShellAlert(ns, pod));
        disarm();

        // Then
        assertFailed(answer, ns, pod, step.failure(ns, pod, `failed: the API server answered 500 InternalError: etcdserver: request timed out (after ${ATTEMPTS} attempt(s))`));
        assert.equal(relay.requestsTo(step.method, write).length, ATTEMPTS);
        await step.assertUntouched(cluster, ns, pod, before);
      });

      it(`a response slower than the deadline: failed within FUNC_TIMEOUT (${TIMEOUT_SECONDS} s) naming the call; nothing changed`, async function () {
        // Given: the relay sits on the write past FUNC_TIMEOUT, and forwards nothing once the function gave up
        const { ns, pod, before } = await target(step, 'slow');
        const write = step.path(ns, pod);
        const disarm = inject(step.method, write, () => ({ kind: 'delay', ms: (TIMEOUT_SECONDS + 2) * 1000 }));

        // When
        const answer = await fn(step.action).post(terminalShellAlert(ns, pod));
        disarm();

        // Then
        assertFailed(answer, ns, pod, new RegExp(`^${escape(step.failure(ns, pod, "did not finish before the function's deadline"))} \\(\\d+ ms were left for it\\)$`));
        assert.ok(answer.elapsedMs < TIMEOUT_SECONDS * 1000, `answered after ${answer.elapsedMs} ms`);
        const attempts = relay.requestsTo(step.method, write);
        assert.equal(attempts.length, 1);
        await waitFor('the function to drop the stalled request', () => Promise.resolve(attempts[0].abandoned === true ? true : undefined), 5000);
        assert.equal(attempts[0].upstreamStatus, undefined);
        await step.assertUntouched(cluster, ns, pod, before);
      });
    });
  }

  describe('403 from the real server: the binding grants everything but the write', function () {
    const subject = (action: string) => ({ user: `system:serviceaccount:${DEPLOY_NAMESPACE}:${action}`, groups: ['system:serviceaccounts', `system:serviceaccounts:${DEPLOY_NAMESPACE}`, 'system:authenticated'] });

    /** What the RBAC authorizer answers now for the ServiceAccount (it reads from a cache that follows changes). */
    async function allowed(action: string, ns: string, verb: string, resource: string, group: string): Promise<boolean> {
      const review = await apiOk(cluster, {
        method: 'POST',
        path: '/apis/authorization.k8s.io/v1/subjectaccessreviews',
        body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec: { ...subject(action), resourceAttributes: { namespace: ns, verb, resource, group } } },
      });
      return review.status.allowed === true;
    }

    /**
     * Removes the action's generated ClusterRoleBinding and binds its ServiceAccount to a role with the same rules
     * minus the write verb; the returned function puts the generated binding back and removes the stand-in.
     */
    async function withoutWrite(step: WriteStep): Promise<() => Promise<void>> {
      const binding = `falco-response-${step.action}`;
      const generated = await apiOk(cluster, { method: 'GET', path: `${RBAC}/clusterrolebindings/${binding}` });
      const standIn = uniqueName(`fi-${step.action}`);
      const rules: Rule[] = clusterRoleRules(step.action).map((r) =>
        r.apiGroups.includes(step.group) && r.resources.includes(step.resource) ? { ...r, verbs: r.verbs.filter((v) => v !== step.verb) } : r,
      );
      const undo = async () => {
        rbacUndo.delete(step.action);
        const restored = { apiVersion: generated.apiVersion, kind: generated.kind, metadata: { name: binding, labels: generated.metadata.labels, annotations: generated.metadata.annotations }, roleRef: generated.roleRef, subjects: generated.subjects };
        const put = await api(cluster, { method: 'POST', path: `${RBAC}/clusterrolebindings`, body: restored });
        if (put.status !== 201 && put.status !== 409) throw new Error(`restoring ${binding} answered ${put.status}: ${JSON.stringify(put.body)}`);
        await api(cluster, { method: 'DELETE', path: `${RBAC}/clusterrolebindings/${standIn}` });
        await api(cluster, { method: 'DELETE', path: `${RBAC}/clusterroles/${standIn}` });
      };
      rbacUndo.set(step.action, undo);
      await apiOk(cluster, { method: 'POST', path: `${RBAC}/clusterroles`, body: { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: standIn }, rules } });
      await apiOk(cluster, {
        method: 'POST',
        path: `${RBAC}/clusterrolebindings`,
        body: {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'ClusterRoleBinding',
          metadata: { name: standIn },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: standIn },
          subjects: [{ kind: 'ServiceAccount', name: step.action, namespace: DEPLOY_NAMESPACE }],
        },
      });
      await apiOk(cluster, { method: 'DELETE', path: `${RBAC}/clusterrolebindings/${binding}` });
      return undo;
    }

    for (const step of steps) {
      it(`${step.action}: failed (HTTP 500) naming the missing permission '${step.verb}' on '${step.resource}'; nothing changed; the binding restored works again`, async function () {
        // Given
        const { ns, pod, before } = await target(step, 'forbidden');
        const restore = await withoutWrite(step);
        await waitFor(`the authorizer to refuse ${step.verb} ${step.resource} to ${step.action}`, async () =>
          !(await allowed(step.action, ns, step.verb, step.resource, step.group)) && (await allowed(step.action, ns, 'get', 'pods', '')) ? true : undefined,
        );

        // When
        let answer: FunctionAnswer;
        try {
          answer = await fn(step.action).post(terminalShellAlert(ns, pod));
        } finally {
          await restore();
        }

        // Then: the real server's refusal, named precisely; one attempt (a 403 is final)
        const resource = step.group === '' ? step.resource : `${step.resource}.${step.group}`;
        const kubeResource = step.action === 'network-isolate' ? `networkpolicies.networking.k8s.io` : `pods "${pod}"`;
        const refusal =
          `${kubeResource} is forbidden: User "system:serviceaccount:${DEPLOY_NAMESPACE}:${step.action}" cannot ${step.verb} resource "${step.resource}" ` +
          `in API group "${step.group}" in the namespace "${ns}"`;
        const hint = `(the function's ServiceAccount lacks the permission '${step.verb}' on '${resource}': declare it in the action's permissions and apply the regenerated ClusterRole from manifests/)`;
        assertFailed(answer, ns, pod, step.failure(ns, pod, `failed: the API server answered 403 Forbidden: ${refusal} ${hint}`));
        const writes = relay.requestsTo(step.method, step.path(ns, pod));
        assert.deepEqual(writes.map((r) => r.upstreamStatus), [403]);
        count(tally.real, 403);
        await step.assertUntouched(cluster, ns, pod, before);

        // And with the generated binding back, the same alert does the job
        await waitFor(`the authorizer to grant ${step.verb} ${step.resource} to ${step.action} again`, async () =>
          (await allowed(step.action, ns, step.verb, step.resource, step.group)) ? true : undefined,
        );
        const again = await fn(step.action).post(terminalShellAlert(ns, pod));
        caseOf(step.action).assertAnswer(again, ns, pod);
        await caseOf(step.action).assertEffect(cluster, ns, pod);
      });
    }
  });

  if (functionExists('network-isolate')) {
    it('network-isolate: ten pods of a namespace with no policy isolated at once: the real server answers 409 nine times, one policy, ten labels, ten done', async function () {
      // Given: ten pods, and every function's read of the policy held until all ten have read it, so that all ten
      // find no policy and all ten try to create it. The gate waits for the tenth read however slow the machine is,
      // so this instance gets a deadline far beyond the gate's own bound: the race, not the clock, is under test.
      const ns = await freshNamespace('fi-409');
      const pods = Array.from({ length: 10 }, (_, i) => `pod-${i}`);
      await Promise.all(pods.map((pod) => createPod(cluster, ns, pod)));
      const token = await serviceAccountToken(cluster, 'network-isolate');
      const kubeconfig = writeTokenKubeconfig(cluster, path.join(scratch, 'network-isolate-race.json'), token, relay.url);
      // All ten must be in flight at once for the race (the default MAX_IN_FLIGHT would queue two behind the held reads).
      const env = { KUBECONFIG: kubeconfig, ...caseOf('network-isolate').env, MAX_IN_FLIGHT: String(pods.length) };
      const racing = await ServedFunction.start('network-isolate', { env, timeoutSeconds: 60 });
      const policyPath = new RegExp(`^${policyCollection(ns)}/${QUARANTINE_POLICY}$`);
      let readsHeld = 0;
      let releaseReads!: () => void;
      const allRead = new Promise<void>((resolve) => (releaseReads = resolve));
      const disarm = inject('GET', policyPath, (n) => {
        if (n > pods.length) return undefined;
        readsHeld = n;
        if (n === pods.length) releaseReads();
        return { kind: 'hold', until: allRead };
      });

      // When
      let answers: FunctionAnswer[];
      try {
        const posted = Promise.all(pods.map((pod) => racing.post(terminalShellAlert(ns, pod))));
        const gateBound = 30_000;
        let bound: NodeJS.Timeout | undefined;
        const gateTimedOut = await Promise.race([
          allRead.then(() => false),
          new Promise<boolean>((resolve) => (bound = setTimeout(() => resolve(true), gateBound))),
        ]);
        clearTimeout(bound);
        if (gateTimedOut) {
          releaseReads();
          await posted.catch(() => undefined);
          assert.fail(`only ${readsHeld} of the ten reads of the policy reached the relay within ${gateBound / 1000} s`);
        }
        answers = await posted;
      } finally {
        disarm();
        await racing.stop();
      }

      // Then: every answer done, none failed; one policy; every pod labelled
      const texts = answers.map((a) => a.text).join('\n');
      assert.equal(answers.filter((a) => a.body.status === 'failed').length, 0, texts);
      assert.deepEqual(answers.map((a) => [a.status, a.body.status]), Array(10).fill([200, 'done']), texts);
      for (const [i, answer] of answers.entries()) caseOf('network-isolate').assertAnswer(answer, ns, pods[i]);
      const creations = relay.requestsTo('POST', new RegExp(`^${policyCollection(ns)}$`)).map((r) => r.upstreamStatus).sort();
      assert.deepEqual(creations, [201, ...Array<number>(9).fill(409)], 'all ten should have tried to create the policy');
      count(tally.real, 409, creations.filter((s) => s === 409).length);
      assert.deepEqual(
        answers.map((a) => a.body.details.policyStep).sort(),
        ['created', ...Array<string>(9).fill('unchanged')],
      );
      const policies = await apiOk(cluster, { method: 'GET', path: policyCollection(ns) });
      assert.deepEqual(policies.items.map((p: any) => p.metadata.name), [QUARANTINE_POLICY]);
      for (const pod of pods) await caseOf('network-isolate').assertEffect(cluster, ns, pod);
      assert.doesNotMatch(racing.logs, /"level":"error"/);
    });
  }

  describe('a 429 before someone else acted: the retry\'s 404 or 409 is not taken for our own write', function () {
    /** The first attempt: `before` acts as someone else would (given the function's request body), then a 429 answers; later attempts reach the server. */
    const rateLimitedOnceAfter = (before: (body: Buffer) => Promise<void>) => (n: number) =>
      n === 1
        ? {
            kind: 'answer' as const,
            status: 429,
            headers: { 'Retry-After': '0' },
            body: status(429, 'TooManyRequests', 'too many requests, please try again later'),
            before,
          }
        : undefined;

    if (functionExists('delete-pod')) {
      it('delete-pod: DELETE answered 429 while someone else deletes the pod; the retry gets 404: skipped "already deleted", no Event', async function () {
        // Given: the relay deletes the pod as an administrator, then answers the function's DELETE with 429
        const step = WRITE_STEPS.find((s) => s.action === 'delete-pod')!;
        const { ns, pod } = await target(step, 'rate-limited');
        const write = step.path(ns, pod);
        const disarm = inject(
          'DELETE',
          write,
          rateLimitedOnceAfter(async () => {
            await apiOk(cluster, { method: 'DELETE', path: `/api/v1/namespaces/${ns}/pods/${pod}`, body: { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 0 } });
            await waitFor(`${describePod(ns, pod)} to be gone`, async () => ((await readPod(cluster, ns, pod)) === undefined ? true : undefined), 5000, 20);
          }),
        );

        // When
        const answer = await fn('delete-pod').post(terminalShellAlert(ns, pod));
        disarm();

        // Then: the real server's 404 reports someone else's deletion; nothing claims it as ours
        assert.deepEqual(
          relay.requestsTo('DELETE', write).map((r) => [r.fault ?? 'forwarded', r.upstreamStatus]),
          [
            ['answer', undefined],
            ['forwarded', 404],
          ],
        );
        assert.equal(answer.status, 200, answer.text);
        assert.deepEqual(answer.body, {
          status: 'skipped',
          code: 'pod-gone',
          reason: `${describePod(ns, pod)} is already deleted`,
          target: { namespace: ns, pod },
        });
        // a skip queues no Event: none can come later
        const events = (await podEvents(cluster, ns, pod)).filter((e) => e.reason === 'FalcoResponseDeleted');
        assert.deepEqual(events, [], 'a FalcoResponseDeleted Event claims a deletion the function did not make');
        count(tally.real, 404);
      });
    }

    if (functionExists('network-isolate')) {
      it('network-isolate: create answered 429 while someone else creates the same policy; the retry gets 409: "as configured", not "created"', async function () {
        // Given: the relay creates the very policy the function sends, as an administrator, then answers 429
        const step = WRITE_STEPS.find((s) => s.action === 'network-isolate')!;
        const { ns, pod } = await target(step, 'rate-limited');
        const write = step.path(ns, pod);
        const disarm = inject(
          'POST',
          write,
          rateLimitedOnceAfter(async (body) => {
            await apiOk(cluster, { method: 'POST', path: policyCollection(ns), body: JSON.parse(body.toString('utf8')) });
          }),
        );

        // When
        const answer = await fn('network-isolate').post(terminalShellAlert(ns, pod));
        disarm();

        // Then
        assert.deepEqual(
          relay.requestsTo('POST', write).map((r) => [r.fault ?? 'forwarded', r.upstreamStatus]),
          [
            ['answer', undefined],
            ['forwarded', 409],
          ],
        );
        caseOf('network-isolate').assertAnswer(answer, ns, pod);
        assert.equal(
          answer.body.message,
          `isolated ${describePod(ns, pod)}: the NetworkPolicy '${QUARANTINE_POLICY}' is as configured; labelled the pod ${QUARANTINE_LABEL}=true`,
        );
        assert.equal(answer.body.details.policyStep, 'unchanged', answer.text);
        await caseOf('network-isolate').assertEffect(cluster, ns, pod);
        count(tally.real, 409);
      });
    }
  });

  describe('a 200 to the runner\'s GET pod that is not that pod: failed, nothing written, no Event', function () {
    const JUNK: readonly { readonly name: string; readonly fault: (ns: string, pod: string) => Fault; readonly why: string }[] = [
      {
        name: 'an HTML page',
        fault: () => ({ kind: 'answer', status: 200, headers: { 'Content-Type': 'text/html' }, rawBody: '<html><body>Welcome</body></html>' }),
        why: '(the whole value): expected a Pod, got "<html><body>Welcome</body></html>"',
      },
      {
        name: 'an empty JSON array',
        fault: () => ({ kind: 'answer', status: 200, body: [] }),
        why: '(the whole value): expected a Pod, got []',
      },
      {
        name: 'a pod with no uid',
        fault: (ns, pod) => ({ kind: 'answer', status: 200, body: { apiVersion: 'v1', kind: 'Pod', metadata: { name: pod, namespace: ns }, spec: {} } }),
        why: 'metadata.uid: required, but missing',
      },
    ];

    for (const step of steps) {
      for (const junk of JUNK) {
        it(`${step.action}: ${junk.name}`, async function () {
          // Given
          const { ns, pod, before } = await target(step, 'junk');
          const read = podPath(ns, pod);
          const disarm = inject('GET', read, (n) => (n === 1 ? junk.fault(ns, pod) : undefined));

          // When
          const answer = await fn(step.action).post(terminalShellAlert(ns, pod));
          disarm();

          // Then
          assertFailed(answer, ns, pod, `get ${describePod(ns, pod)} failed: the API server's answer is not that pod (${junk.why})`);
          const writes = relay.requests.filter((r) => r.method !== 'GET' && r.path.includes(`/namespaces/${ns}/`) && r.at >= relay.requestsTo('GET', read)[0].at);
          assert.deepEqual(writes.map((r) => `${r.method} ${r.path}`), []);
          await step.assertUntouched(cluster, ns, pod, before);
          const ours = (await podEvents(cluster, ns, pod)).filter((e) => String(e.reason).startsWith('FalcoResponse'));
          assert.deepEqual(ours, []);
        });
      }
    }
  });

  if (functionExists('network-isolate')) {
    it('network-isolate: a 200 to GET networkpolicy that is another policy: failed, no policy written, the pod not labelled, no Event', async function () {
      // Given: the relay answers the read of the quarantine policy with a policy of another name
      const step = WRITE_STEPS.find((s) => s.action === 'network-isolate')!;
      const { ns, pod, before } = await target(step, 'junk-policy');
      const read = new RegExp(`^${policyCollection(ns)}/${QUARANTINE_POLICY}$`);
      const other = {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name: 'allow-all', namespace: ns, uid: 'u', resourceVersion: '1' },
        spec: { podSelector: {}, ingress: [{}] },
      };
      const disarm = inject('GET', read, (n) => (n === 1 ? { kind: 'answer', status: 200, body: other } : undefined));

      // When
      const answer = await fn('network-isolate').post(terminalShellAlert(ns, pod));
      disarm();

      // Then
      const policy = `the NetworkPolicy '${QUARANTINE_POLICY}' in the namespace '${ns}'`;
      assertFailed(
        answer,
        ns,
        pod,
        `${describePod(ns, pod)} was not isolated and not labelled ${QUARANTINE_LABEL}=true, because ${policy} could not be put in place: ` +
          `get ${policy} failed: the API server's answer is not that NetworkPolicy (metadata.name: expected "${QUARANTINE_POLICY}", got "allow-all")`,
      );
      await step.assertUntouched(cluster, ns, pod, before);
      const ours = (await podEvents(cluster, ns, pod)).filter((e) => String(e.reason).startsWith('FalcoResponse'));
      assert.deepEqual(ours, []);
    });
  }

  describe('404 from the real server: the pod deleted between the action\'s read and its write', function () {
    const gone: Record<string, (ns: string, pod: string) => RegExp> = {
      'delete-pod': (ns, pod) => new RegExp(`^${escape(describePod(ns, pod))} is already deleted$`),
      'label-pod': (ns, pod) => new RegExp(`^${escape(describePod(ns, pod))} was deleted before it could be labelled$`),
      'network-isolate': (ns, pod) =>
        new RegExp(`^${escape(describePod(ns, pod))} was deleted before it could be labelled ${escape(QUARANTINE_LABEL)}=true \\((created the NetworkPolicy|the NetworkPolicy) '${QUARANTINE_POLICY}'`),
    };

    for (const step of steps) {
      it(`${step.action}: skipped pod-gone (HTTP 200), not failed`, async function () {
        // Given: the relay passes the runner's read of the pod on only once the pod is really gone
        const pod = uniqueName('vanishing');
        await createPod(cluster, namespace, pod);
        const read = podPath(namespace, pod);
        const disarm = inject('GET', read, (n) =>
          n === 1
            ? {
                kind: 'after',
                hook: async (answer) => {
                  assert.equal(answer.status, 200, answer.body);
                  await apiOk(cluster, { method: 'DELETE', path: `/api/v1/namespaces/${namespace}/pods/${pod}`, body: { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 0 } });
                  await waitFor(`${describePod(namespace, pod)} to be gone`, async () => ((await readPod(cluster, namespace, pod)) === undefined ? true : undefined), 5000, 20);
                },
              }
            : undefined,
        );

        // When
        const answer = await fn(step.action).post(terminalShellAlert(namespace, pod));
        disarm();

        // Then
        assert.equal(answer.status, 200, answer.text);
        assert.equal(answer.body.status, 'skipped', answer.text);
        assert.equal(answer.body.code, 'pod-gone');
        assert.match(answer.body.reason, gone[step.action](namespace, pod));
        const podWrites = relay.requestsTo(step.action === 'delete-pod' ? 'DELETE' : 'PATCH', read);
        assert.deepEqual(podWrites.map((r) => r.upstreamStatus), [404]);
        count(tally.real, 404);
      });
    }
  });
});

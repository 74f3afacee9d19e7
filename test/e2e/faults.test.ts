/**
 * Faults on a real control plane: an API server that hangs or is gone makes an action answer a failure within its
 * deadline, naming the cause, and the next alert after it is back succeeds. A protected namespace is never touched:
 * not a single connection reaches the API server.
 */
import { strict as assert } from 'assert';
import { presentActionCases } from './helpers/cases';
import { api, createNamespace, createPod, podEvents, readPod, uniqueName } from './helpers/cluster';
import { pauseApiserver, PrivateCluster, resumeApiservers, waitReady } from './helpers/control-plane';
import { ensureDeployed } from './helpers/deploy';
import { CountingRelay } from './helpers/proxy';
import { ServedFunction } from './helpers/runtime';
import { terminalShellAlert } from './helpers/sidekick';
import { actionSuite } from './helpers/suite';

/** FUNC_TIMEOUT of the fault tests: the runner stops itself a little before it (PROTOCOLS section 1). */
const TIMEOUT_SECONDS = 3;

// Root hooks: the private cluster of the "killed API server" test boots (12 s, more on a busy machine) while the
// other files run, and is stopped once everything is over.
let privateCluster: Promise<PrivateCluster> | undefined;
before(function () {
  privateCluster = PrivateCluster.start();
  privateCluster.catch(() => undefined); // awaited, and so reported, by its test
});
after(async function () {
  if (privateCluster !== undefined) await privateCluster.then((own) => own.stop(), () => undefined);
});

describe('e2e: faults of the control plane, and protected namespaces', function () {
  const relays: CountingRelay[] = [];
  const kubePublicPods: string[] = [];
  const suite = actionSuite('faults', {
    first: resumeApiservers,
    cleanup: () =>
      Promise.all([
        ...relays.map((r) => r.stop()),
        ...kubePublicPods.map((pod) => api(suite.cluster, { method: 'DELETE', path: `/api/v1/namespaces/kube-public/pods/${pod}` })),
      ]),
  });

  for (const action of presentActionCases()) {
    it(`${action.name}: leaves a pod of a protected namespace alone, with not one connection to the API server`, async function () {
      // Given: a pod in kube-public (protected by default) and one in a namespace the operator protects, and the
      // function reaching the API server only through a relay that counts connections
      const [publicPod, listedPod, controlPod] = [uniqueName('public'), uniqueName('listed'), uniqueName('control')];
      kubePublicPods.push(publicPod);
      const publicBefore = await createPod(suite.cluster, 'kube-public', publicPod);
      const listedBefore = await createPod(suite.cluster, suite.namespace, listedPod);
      await createPod(suite.cluster, suite.namespace, controlPod);
      const relay = await CountingRelay.start(new URL(suite.cluster.server));
      relays.push(relay);
      const kubeconfig = await suite.kubeconfigFor(action.name, suite.cluster, relay.url);
      const byDefault = await ServedFunction.start(action.name, { env: { KUBECONFIG: kubeconfig, ...action.env } });
      const listing = await ServedFunction.start(action.name, { env: { KUBECONFIG: kubeconfig, ...action.env, PROTECTED_NAMESPACES: `kube-system,${suite.namespace}` } });

      // When
      const publicAnswer = await byDefault.post(terminalShellAlert('kube-public', publicPod));
      const listedAnswer = await listing.post(terminalShellAlert(suite.namespace, listedPod));
      const connectionsWhileProtected = relay.connectionCount;
      // The control: the same relay carries a real action, so the zero above is not a broken relay.
      const controlAnswer = await byDefault.post(terminalShellAlert(suite.namespace, controlPod));

      // Then
      for (const [answer, ns, pod] of [
        [publicAnswer, 'kube-public', publicPod],
        [listedAnswer, suite.namespace, listedPod],
      ] as const) {
        assert.equal(answer.status, 200, answer.text);
        assert.deepEqual(answer.body, {
          status: 'skipped',
          code: 'protected-namespace',
          reason: `the namespace '${ns}' is protected (PROTECTED_NAMESPACES): the pod '${pod}' is left alone`,
          target: { namespace: ns, pod },
        });
      }
      assert.equal(connectionsWhileProtected, 0, 'a connection reached the API server for a protected pod');
      assert.equal(controlAnswer.body.status, 'done', controlAnswer.text);
      assert.ok(relay.connectionCount > 0);
      assert.equal((await readPod(suite.cluster, 'kube-public', publicPod)).metadata.resourceVersion, publicBefore.metadata.resourceVersion);
      assert.equal((await readPod(suite.cluster, suite.namespace, listedPod)).metadata.resourceVersion, listedBefore.metadata.resourceVersion);
      assert.deepEqual(await podEvents(suite.cluster, 'kube-public', publicPod), []);
      assert.deepEqual(await podEvents(suite.cluster, suite.namespace, listedPod), []);
      await byDefault.stop();
      await listing.stop();
    });
  }

  it(`delete-pod: a hanging API server (SIGSTOP) gives a failure within FUNC_TIMEOUT (${TIMEOUT_SECONDS} s) naming the call; after it resumes the next alert succeeds`, async function () {
    // Given
    const pod = uniqueName('paused');
    await createPod(suite.cluster, suite.namespace, pod);
    const fn = await suite.serve('delete-pod', {}, { timeoutSeconds: TIMEOUT_SECONDS });

    // When: the API server freezes: connections are accepted by the kernel, nothing answers
    let answer;
    pauseApiserver(suite.cluster);
    try {
      answer = await fn.post(terminalShellAlert(suite.namespace, pod));
    } finally {
      resumeApiservers();
    }

    // Then: a failure, in time, that says which call did not finish
    assert.equal(answer.status, 500, answer.text);
    assert.equal(answer.body.status, 'failed');
    assert.match(answer.body.error, new RegExp(`^get the pod '${pod}' in the namespace '${suite.namespace}' did not finish before the function's deadline \\(\\d+ ms were left for it\\)$`));
    assert.ok(answer.elapsedMs < TIMEOUT_SECONDS * 1000, `answered after ${answer.elapsedMs} ms`);

    // And when it is back, the next alert does the job
    await waitReady(suite.cluster);
    const after = await fn.post(terminalShellAlert(suite.namespace, pod));
    assert.equal(after.body.status, 'done', after.text);
    assert.equal(await readPod(suite.cluster, suite.namespace, pod), undefined);
  });

  it('delete-pod: an API server that is gone (killed) gives a failure naming it, after retries; once restarted the next alert succeeds', async function () {
    // Given: a cluster of its own, since this one's API server goes down
    const own = await privateCluster!;
    await ensureDeployed(own.cluster);
    const ns = await createNamespace(own.cluster, 'gone');
    const pod = uniqueName('gone');
    await createPod(own.cluster, ns, pod);
    const fn = await ServedFunction.start('delete-pod', { env: { KUBECONFIG: await suite.kubeconfigFor('delete-pod', own.cluster) }, timeoutSeconds: TIMEOUT_SECONDS });
    // A first alert on another pod: the function holds a kept-alive connection when the server goes away.
    const warm = uniqueName('warm');
    await createPod(own.cluster, ns, warm);
    assert.equal((await fn.post(terminalShellAlert(ns, warm))).body.status, 'done');

    // When
    const args = await own.killApiserver();
    const answer = await fn.post(terminalShellAlert(ns, pod));

    // Then
    assert.equal(answer.status, 500, answer.text);
    assert.equal(answer.body.status, 'failed');
    assert.match(
      answer.body.error,
      new RegExp(`^get the pod '${pod}' in the namespace '${ns}' failed: could not reach the API server at ${own.cluster.server.replace(/\./g, '\\.')}: ECONNREFUSED`),
    );
    assert.ok(answer.elapsedMs < TIMEOUT_SECONDS * 1000, `answered after ${answer.elapsedMs} ms`);

    // And once it is started again, the next alert does the job
    await own.restartApiserver(args);
    const after = await fn.post(terminalShellAlert(ns, pod));
    assert.equal(after.body.status, 'done', after.text);
    assert.equal(await readPod(own.cluster, ns, pod), undefined);
  });
});


/**
 * Each action's BUILT bundle, served by the built runtime under Node 14 (Kubeless nodejs14), acting on a real pod of
 * a real API server after a Falcosidekick-shaped POST, authenticated as its OWN generated ServiceAccount.
 */
import { strict as assert } from 'assert';
import * as path from 'path';
import { ACTION_CASES, NON_ACTION_FUNCTIONS, presentActionCases } from './helpers/cases';
import { createPod, podEvents, readPod, recordedEvents, uniqueName, waitFor } from './helpers/cluster';
import { clusterRoleRules, functionFolders, serviceAccountToken, ServiceAccountMount } from './helpers/deploy';
import { assertRefusedOutsideRole, assertRoleGranted, ledger } from './helpers/least-privilege';
import { ServedFunction } from './helpers/runtime';
import { terminalShellAlert } from './helpers/sidekick';
import { actionSuite } from './helpers/suite';

/** The token with one character of its signature changed: well-formed, and refused 401 by the API server. */
function tamperedSignature(token: string): string {
  const at = token.lastIndexOf('.') + 10;
  return token.slice(0, at) + (token[at] === 'A' ? 'B' : 'A') + token.slice(at + 1);
}

// A root hook: once, after every file of the suite, the count of API calls checked for least privilege.
after(function () {
  process.stdout.write(
    `\n  least privilege: ${ledger.allowed + ledger.refused} API calls checked with the functions' own tokens ` +
      `(${ledger.allowed} granted by the generated ClusterRoles, ${ledger.refused} refused outside them)\n`,
  );
});

describe('e2e: every action on a real API server, as its own ServiceAccount (built bundles, Node 14 runtime)', function () {
  const suite = actionSuite('actions');

  it('has an e2e case for every function under functions/ (add one to test/e2e/helpers/cases.ts)', function () {
    const covered = new Set([...ACTION_CASES.map((c) => c.name), ...NON_ACTION_FUNCTIONS]);
    assert.deepEqual(
      functionFolders().filter((name) => !covered.has(name)),
      [],
    );
  });

  for (const action of presentActionCases()) {
    describe(action.name, function () {
      it('acts on the pod a Falcosidekick POST names, through a JSON kubeconfig with its own token, and records an Event', async function () {
        // Given: the pod, and the function authenticated as its generated ServiceAccount
        const pod = uniqueName(action.name);
        const created = await createPod(suite.cluster, suite.namespace, pod);
        const fn = await suite.serve(action.name, action.env);

        // When
        const answer = await fn.post(terminalShellAlert(suite.namespace, pod));

        // Then: the answer, the pod as the API server has it, and the audit Event on the pod
        action.assertAnswer(answer, suite.namespace, pod);
        await action.assertEffect(suite.cluster, suite.namespace, pod);
        const events = await recordedEvents(suite.cluster, suite.namespace, pod, action.eventReason);
        assert.equal(events.length, 1, `expected one ${action.eventReason} Event on ${suite.namespace}/${pod}\n${fn.logs}`);
        assert.equal(events[0].type, 'Warning');
        assert.equal(events[0].involvedObject.uid, created.metadata.uid);
        assert.equal(events[0].source.component, `falco-response/${action.name}`);
        assert.match(events[0].message, /^\S+ .*the Falco rule "Terminal shell in container" \(priority Critical, alert uuid 3c5d0a84-4b7e-4f44-9a21-2f0cbb4f8e11\)$/);
        await fn.stop();
      });

      it('is granted exactly its generated ClusterRole: each rule allowed, and calls outside it refused 403', async function () {
        // Given
        const pod = uniqueName(`${action.name}-probe`);
        await createPod(suite.cluster, suite.namespace, pod);
        const token = await serviceAccountToken(suite.cluster, action.name);
        const rules = clusterRoleRules(action.name);
        assert.ok(rules.length > 0, `manifests/kubeless/${action.name}.yaml grants nothing`);

        // When / Then
        await assertRoleGranted(suite.cluster, token, rules, suite.namespace);
        const refused = await assertRefusedOutsideRole(suite.cluster, token, rules, { namespace: suite.namespace, pod, serviceAccount: action.name });
        assert.ok(refused.length >= 20, `only ${refused.length} calls were probed`);
        assert.notEqual(await readPod(suite.cluster, suite.namespace, pod), undefined, 'a refused call removed the pod');
      });

      it('runs in-cluster (ServiceAccount mount, KUBERNETES_SERVICE_HOST/PORT) and reads the token again after a rotation', async function () {
        // Given: a mount like the kubelet's, the function started with no KUBECONFIG
        const [first, second] = [uniqueName(`${action.name}-a`), uniqueName(`${action.name}-b`)];
        await createPod(suite.cluster, suite.namespace, first);
        await createPod(suite.cluster, suite.namespace, second);
        const mount = new ServiceAccountMount(path.join(suite.scratch, `${action.name}-serviceaccount`), suite.cluster);
        mount.rotate(await serviceAccountToken(suite.cluster, action.name));
        const server = new URL(suite.cluster.server);
        const fn = await ServedFunction.start(action.name, {
          env: { KUBE_SERVICEACCOUNT_DIR: mount.dir, KUBERNETES_SERVICE_HOST: server.hostname, KUBERNETES_SERVICE_PORT: server.port, ...action.env },
        });
        const firstAnswer = await fn.post(terminalShellAlert(suite.namespace, first));
        action.assertAnswer(firstAnswer, suite.namespace, first);
        await action.assertEffect(suite.cluster, suite.namespace, first);

        // When: the file is swapped for a token the API server refuses (a broken signature) ...
        const refusedToken = tamperedSignature(await serviceAccountToken(suite.cluster, action.name));
        mount.rotate(refusedToken);
        const refused = await fn.post(terminalShellAlert(suite.namespace, second));

        // ... then a fresh one
        mount.rotate(await serviceAccountToken(suite.cluster, action.name));
        const secondAnswer = await fn.post(terminalShellAlert(suite.namespace, second));

        // Then: the refused token was read at once (401, nothing done), and the fresh one works on the next alert
        assert.equal(refused.status, 500, refused.text);
        assert.equal(refused.body.status, 'failed');
        assert.match(refused.body.error, new RegExp(`^get the pod '${second}' in the namespace '${suite.namespace}' failed: the API server answered 401 Unauthorized`));
        assert.match(refused.body.error, /the ServiceAccount token was refused/);
        action.assertAnswer(secondAnswer, suite.namespace, second);
        await action.assertEffect(suite.cluster, suite.namespace, second);
        await waitFor('the second event', async () => ((await podEvents(suite.cluster, suite.namespace, second)).some((e) => e.reason === action.eventReason) ? true : undefined), 5000);
        await fn.stop();
      });
    });
  }

  it('delete-pod: the Event of a pod whose name is longer than a generated name is recorded (the API server keeps 58 characters and adds 5)', async function () {
    // Given: a pod of a 220-character name
    const deleteCase = presentActionCases().find((c) => c.name === 'delete-pod');
    assert.ok(deleteCase !== undefined, 'no e2e case for delete-pod');
    const pod = uniqueName(`long-${'a'.repeat(206)}`);
    const created = await createPod(suite.cluster, suite.namespace, pod);
    const fn = await suite.serve('delete-pod', deleteCase.env);

    // When
    const answer = await fn.post(terminalShellAlert(suite.namespace, pod));

    // Then: the API server's answer to the Event POST is taken as that Event (eventRecorded: "queued", then recorded), and it is
    deleteCase.assertAnswer(answer, suite.namespace, pod);
    const events = await recordedEvents(suite.cluster, suite.namespace, pod, 'FalcoResponseDeleted');
    assert.equal(events.length, 1, fn.logs);
    assert.equal(events[0].involvedObject.uid, created.metadata.uid);
    assert.equal(events[0].metadata.name.length, 63, events[0].metadata.name);
    assert.ok(events[0].metadata.name.startsWith(pod.slice(0, 58)), events[0].metadata.name);
    await fn.stop();
  });
});

/**
 * Alerts from a Falcosidekick-shaped pod in the namespace `falco`, through cluster DNS, the forwarder's Service and
 * kube-proxy, to the actions' Services; the actions act on real running pods through the API server.
 */
import { strict as assert } from 'assert';
import { terminalShellAlert } from '../e2e/helpers/sidekick';
import { deployedOnce, firstAnswer, readyPods, resultsOf, WORKLOAD_NAMESPACE, type Deployed } from './helpers/deploy';
import { getJson, kubectlOk } from './helpers/node';

describe('node: an alert from Falcosidekick acts on a running pod', function () {
  let d: Deployed;
  before(async function () {
    this.timeout(600000);
    d = await deployedOnce();
  });

  it('labels and isolates a running pod of a Deployment in another namespace', async () => {
    // Given a running pod of the workload, not yet marked
    const pods = await readyPods(WORKLOAD_NAMESPACE, 'app=web,!falco-response.io/quarantine');
    assert.ok(pods.length > 0, 'no unmarked running pod of the workload');
    const name = pods[0].metadata.name as string;
    // When Falcosidekick sends a terminal-shell alert about it
    const answer = await firstAnswer(d, terminalShellAlert(WORKLOAD_NAMESPACE, name));
    // Then the forwarder answers 200, both actions done, and the pod carries their labels
    assert.equal(answer.status, 200, answer.body);
    const results = resultsOf(answer);
    assert.deepEqual(
      Object.fromEntries(Object.entries(results).map(([k, r]) => [k, [r.status, r.httpStatus]])),
      { 'label-pod': ['done', 200], 'network-isolate': ['done', 200] },
      answer.body,
    );
    const labels = (await getJson(['pod', name, '-n', WORKLOAD_NAMESPACE])).metadata.labels;
    assert.deepEqual(
      [labels['falco.org/flagged'], labels['falco.org/rule'], labels['falco.org/priority'], labels['falco-response.io/quarantine']],
      ['true', 'Terminal-shell-in-container-e0e5b21b', 'Critical', 'true'],
    );
    const policy = await getJson(['networkpolicy', 'falco-response-quarantine', '-n', WORKLOAD_NAMESPACE]);
    assert.deepEqual(policy.spec.podSelector, { matchLabels: { 'falco-response.io/quarantine': 'true' } });
    // and the pod still runs: isolation keeps it for forensics
    assert.equal((await getJson(['pod', name, '-n', WORKLOAD_NAMESPACE])).status.phase, 'Running');
  });

  it('leaves a running pod of a protected namespace alone', async () => {
    // Given a running pod in kube-system
    await kubectlOk(['apply', '-f', '-'], JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'bystander', namespace: 'kube-system', labels: { app: 'bystander' } },
      spec: {
        terminationGracePeriodSeconds: 1,
        securityContext: { runAsNonRoot: true, runAsUser: 1000 },
        containers: [{ name: 'c', image: 'node:24.22.3-alpine', imagePullPolicy: 'IfNotPresent', command: ['node', '-e', 'setInterval(() => {}, 1e9)'] }],
      },
    }));
    await kubectlOk(['wait', '-n', 'kube-system', '--for=condition=Ready', 'pod/bystander', '--timeout=120s'], undefined, 130000);
    // When an alert names it
    const answer = await firstAnswer(d, terminalShellAlert('kube-system', 'bystander'));
    // Then nothing is done to it, and the answer says why
    assert.equal(answer.status, 200, answer.body);
    const results = resultsOf(answer);
    for (const action of ['label-pod', 'network-isolate']) {
      assert.equal(results[action].status, 'skipped', `${action}: ${results[action].message}`);
    }
    const pod = await getJson(['pod', 'bystander', '-n', 'kube-system']);
    assert.deepEqual(pod.metadata.labels, { app: 'bystander' });
    await kubectlOk(['delete', 'pod', 'bystander', '-n', 'kube-system', '--wait=false']);
  });
});

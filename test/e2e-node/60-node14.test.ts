/**
 * The same bundles on Node 14.21.3, the Node of Kubeless's nodejs14 runtime, as pods: the standalone default image
 * runs Node 24 (the files before this one); here every function is switched to node:14.21.3-alpine, as
 * `standalone.image: node:14.21.3-alpine` in falco-response.yaml would generate it, and does the same work.
 */
import { strict as assert } from 'assert';
import { terminalShellAlert } from '../e2e/helpers/sidekick';
import { inspectVersion } from './helpers/inspect';
import {
  deployedOnce,
  firstAnswer,
  FUNCTIONS,
  FUNCTIONS_NAMESPACE,
  NODE_IMAGE,
  readyPods,
  resultsOf,
  rolledOut,
  sendFromClient,
  WORKLOAD_NAMESPACE,
  type Deployed,
} from './helpers/deploy';
import { kubectl, kubectlOk, waitFor } from './helpers/node';

const NODE14 = 'node:14.21.3-alpine';

describe('node: the functions on Node 14.21.3', function () {
  this.timeout(600000);
  let d: Deployed;

  before(async () => {
    d = await deployedOnce();
    for (const fn of FUNCTIONS) {
      const patch = { spec: { template: { spec: { containers: [{ name: fn, image: NODE14, env: [{ name: 'FUNC_RUNTIME', value: 'nodejs14' }] }] } } } };
      await kubectlOk(['-n', FUNCTIONS_NAMESPACE, 'patch', 'deployment', fn, '--type=strategic', '-p', JSON.stringify(patch)]);
    }
    for (const fn of FUNCTIONS) await rolledOut(FUNCTIONS_NAMESPACE, fn);
  });

  it('runs every function on Node v14.21.3', async () => {
    for (const fn of FUNCTIONS) {
      const pods = await waitFor(`${fn}: only Node 14 pods left`, async () => {
        const ready = await readyPods(FUNCTIONS_NAMESPACE, `function=${fn}`);
        return ready.length === 2 && ready.every((p) => p.spec.containers[0].image === NODE14) ? ready : undefined;
      }, 120000);
      for (const pod of pods) assert.equal(await inspectVersion(FUNCTIONS_NAMESPACE, pod.metadata.name), 'v14.21.3', `${fn} ${pod.metadata.name}`);
    }
  });

  it('labels and isolates a running pod, and deletes one', async () => {
    // Given a running pod of the workload, and one to delete
    const [pod] = await readyPods(WORKLOAD_NAMESPACE, 'app=web');
    await kubectlOk(['apply', '-f', '-'], JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'node14-victim', namespace: WORKLOAD_NAMESPACE },
      spec: {
        terminationGracePeriodSeconds: 1,
        securityContext: { runAsNonRoot: true, runAsUser: 1000 },
        containers: [{ name: 'c', image: NODE_IMAGE, imagePullPolicy: 'IfNotPresent', command: ['node', '-e', 'setInterval(() => {}, 1e9)'] }],
      },
    }));
    await kubectlOk(['wait', '-n', WORKLOAD_NAMESPACE, '--for=condition=Ready', 'pod/node14-victim', '--timeout=120s'], undefined, 130000);
    // When Falcosidekick sends an alert about the first through the forwarder, and one about the second to delete-pod
    const answer = await firstAnswer(d, terminalShellAlert(WORKLOAD_NAMESPACE, pod.metadata.name));
    const deleted = await sendFromClient(d, terminalShellAlert(WORKLOAD_NAMESPACE, 'node14-victim'), `http://delete-pod.${FUNCTIONS_NAMESPACE}.svc.cluster.local:8080`);
    // Then
    assert.equal(answer.status, 200, answer.body);
    const results = resultsOf(answer);
    assert.deepEqual([results['label-pod'].status, results['network-isolate'].status], ['done', 'done'], answer.body);
    assert.equal(deleted.status, 200, deleted.body);
    assert.equal(JSON.parse(deleted.body ?? 'null').status, 'done', deleted.body);
    await waitFor('node14-victim deleted', async () => {
      const r = await kubectl(['get', 'pod', 'node14-victim', '-n', WORKLOAD_NAMESPACE, '-o', 'json']);
      return r.code !== 0 || JSON.parse(r.stdout).metadata.deletionTimestamp !== undefined ? true : undefined;
    }, 30000);
  });
});

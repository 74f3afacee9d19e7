/**
 * The forwarder in its own runtime routes a Falcosidekick POST to the actions, each in its own runtime with its own
 * ServiceAccount token, and their effects appear in the real API server. The forwarder's own ServiceAccount may do
 * nothing at all.
 */
import { strict as assert } from 'assert';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { ACTION_CASES, functionExists } from './helpers/cases';
import { apiOk, createNamespace, createPod, deleteNamespaces, readPod, recordedEvents, sharedCluster, uniqueName, type Cluster } from './helpers/cluster';
import { clusterRoleRules, DEPLOY_NAMESPACE, ensureDeployed, serviceAccountToken, writeTokenKubeconfig } from './helpers/deploy';
import { assertRefusedOutsideRole, canI, ledger } from './helpers/least-privilege';
import { RECHECK_MS } from '../../lib/router/followed-file';
import { ConfigMapVolume } from '../helpers/configmap-volume';
import { ServedFunction, stopAllFunctions } from './helpers/runtime';
import { terminalShellAlert } from './helpers/sidekick';

const FORWARDER = 'forwarder';

if (functionExists(FORWARDER)) {
  describe('e2e: the forwarder routes an alert to the actions, and their effects reach the real API server', function () {
    let cluster: Cluster;
    let namespace: string;
    let scratch: string;
    /** Every action present, each in its own runtime as its own ServiceAccount. */
    const actions = new Map<string, ServedFunction>();

    /** The forwarder with a routing table, calling the local actions (ACTION_ENDPOINTS), without any Kubernetes credential. */
    async function serveForwarder(routesJson: string): Promise<ServedFunction> {
      const routesFile = path.join(scratch, `${uniqueName('routes')}.json`);
      writeFileSync(routesFile, routesJson);
      const endpoints = Object.fromEntries([...actions].map(([name, fn]) => [name, fn.url]));
      return ServedFunction.start(FORWARDER, {
        env: { ROUTES_FILE: routesFile, ACTION_ENDPOINTS: JSON.stringify(endpoints), POD_NAMESPACE: DEPLOY_NAMESPACE },
      });
    }

    before(async function () {
      cluster = sharedCluster();
      await ensureDeployed(cluster);
      namespace = await createNamespace(cluster, 'forwarder');
      scratch = mkdtempSync(path.join(tmpdir(), 'falco-response-e2e-forwarder-'));
      for (const action of ACTION_CASES.filter((c) => functionExists(c.name))) {
        const kubeconfig = writeTokenKubeconfig(cluster, path.join(scratch, `${action.name}.json`), await serviceAccountToken(cluster, action.name));
        actions.set(action.name, await ServedFunction.start(action.name, { env: { KUBECONFIG: kubeconfig, ...action.env } }));
      }
    });

    after(async function () {
      await stopAllFunctions();
      if (namespace !== undefined) await deleteNamespaces(cluster, [namespace]);
      if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
    });

    it('routes a terminal-shell alert with the deployed routing table (ConfigMap forwarder-config) to its actions, which act on the pod', async function () {
      // Given: the table exactly as applied to the cluster
      const configMap = await apiOk(cluster, { method: 'GET', path: `/api/v1/namespaces/${DEPLOY_NAMESPACE}/configmaps/${FORWARDER}-config` });
      const routes = configMap.data['routes.json'] as string;
      const routed: string[] = (JSON.parse(routes).routes as { rules?: string[]; actions: string[] }[])
        .filter((r) => r.rules?.includes('Terminal shell in container'))
        .flatMap((r) => r.actions);
      assert.ok(routed.length > 0, 'the deployed routing table sends a terminal shell nowhere');
      const missing = routed.filter((name) => !actions.has(name));
      assert.deepEqual(missing, [], 'the deployed routing table names actions that do not exist');
      const pod = uniqueName('routed');
      await createPod(cluster, namespace, pod);
      const forwarder = await serveForwarder(routes);

      // When
      const answer = await forwarder.post(terminalShellAlert(namespace, pod));

      // Then: one result per routed action, each done, and each action's effect on the pod
      assert.equal(answer.status, 200, answer.text);
      assert.equal(answer.body.status, 'done', answer.text);
      assert.deepEqual(
        answer.body.results.map((r: any) => [r.action, r.status, r.httpStatus]),
        routed.map((name) => [name, 'done', 200]),
      );
      for (const name of routed) {
        const action = ACTION_CASES.find((c) => c.name === name)!;
        await action.assertEffect(cluster, namespace, pod);
        assert.equal((await recordedEvents(cluster, namespace, pod, action.eventReason)).length, 1, `no ${action.eventReason} Event`);
      }
    });

    it('routes to delete-pod with a table of the operator, and the pod is deleted', async function () {
      const pod = uniqueName('routed-delete');
      await createPod(cluster, namespace, pod);
      const table = { routes: [{ name: 'shell-delete', rules: ['Terminal shell in container'], actions: ['delete-pod'] }] };
      const forwarder = await serveForwarder(JSON.stringify(table));

      const answer = await forwarder.post(terminalShellAlert(namespace, pod));

      assert.equal(answer.status, 200, answer.text);
      assert.deepEqual(
        answer.body.results.map((r: any) => [r.action, r.status]),
        [['delete-pod', 'done']],
      );
      assert.equal(await readPod(cluster, namespace, pod), undefined);
    });

    it('follows an edit of its mounted ConfigMap without a restart: the next alert takes the new route', async function () {
      // Given: a table that routes a shell to label-pod only, mounted the way the kubelet mounts a ConfigMap
      // (routes.json -> ..data/routes.json, ..data -> a folder per version, swapped atomically)
      const volume = ConfigMapVolume.create(
        path.join(scratch, uniqueName('mount')),
        'routes.json',
        JSON.stringify({ routes: [{ name: 'shell-label', rules: ['Terminal shell in container'], actions: ['label-pod'] }] }),
      );
      const endpoints = Object.fromEntries([...actions].map(([name, fn]) => [name, fn.url]));
      const forwarder = await ServedFunction.start(FORWARDER, {
        env: { ROUTES_FILE: volume.path, ACTION_ENDPOINTS: JSON.stringify(endpoints), POD_NAMESPACE: DEPLOY_NAMESPACE },
      });
      const [labelled, deleted] = [uniqueName('followed-label'), uniqueName('followed-delete')];
      await Promise.all([createPod(cluster, namespace, labelled), createPod(cluster, namespace, deleted)]);
      const before = await forwarder.post(terminalShellAlert(namespace, labelled));

      // When: the operator's edit reaches the mount, and the forwarder's next look at it is due
      volume.publish(JSON.stringify({ routes: [{ name: 'shell-delete', rules: ['Terminal shell in container'], actions: ['delete-pod'] }] }));
      await new Promise((resolve) => setTimeout(resolve, RECHECK_MS + 100));
      const after = await forwarder.post(terminalShellAlert(namespace, deleted));

      // Then
      assert.deepEqual(before.body.results.map((r: any) => [r.action, r.status]), [['label-pod', 'done']], before.text);
      assert.deepEqual(after.body.results.map((r: any) => [r.action, r.status]), [['delete-pod', 'done']], after.text);
      assert.equal(await readPod(cluster, namespace, deleted), undefined);
      assert.notEqual(await readPod(cluster, namespace, labelled), undefined);
      assert.match(forwarder.logs, /"message":"the routing table changed: the new one is in effect"/);
    });

    it("has a ServiceAccount that may do nothing: can-i says no, and every call is refused 403", async function () {
      // Given
      const pod = uniqueName('forwarder-probe');
      await createPod(cluster, namespace, pod);
      const token = await serviceAccountToken(cluster, FORWARDER);
      assert.deepEqual(clusterRoleRules(FORWARDER), [], 'the forwarder has a ClusterRole');

      // When / Then
      const asked = [
        { verb: 'list', group: '', resource: 'pods', namespace },
        { verb: 'get', group: '', resource: 'pods', namespace },
        { verb: 'get', group: '', resource: 'secrets', namespace: DEPLOY_NAMESPACE },
        { verb: 'list', group: '', resource: 'secrets' },
        { verb: 'create', group: '', resource: 'events', namespace },
        { verb: 'get', group: '', resource: 'configmaps', namespace: DEPLOY_NAMESPACE },
      ];
      for (const ask of asked) assert.equal(await canI(cluster, token, ask), false, `the forwarder may ${ask.verb} ${ask.resource}`);
      ledger.refused += asked.length;
      await assertRefusedOutsideRole(cluster, token, [], { namespace, pod, serviceAccount: FORWARDER });
    });
  });
}

/**
 * cordon-node's BUILT bundle, served by the built runtime under Node 14 (Kubeless nodejs14), on a real API server as
 * its OWN generated ServiceAccount: a Node object and a pod bound to it (spec.nodeName), a Falcosidekick-shaped POST,
 * and then the node, its taints and the Events on the node and on the pod as the API server has them.
 * The suite's controller-manager runs the node lifecycle controller, which taints a node on its own (a cordoned one
 * `node.kubernetes.io/unschedulable`, one whose kubelet never reports `node.kubernetes.io/not-ready` or `unreachable`):
 * a real concurrent writer of the same taint list.
 */
import { strict as assert } from 'assert';
import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { api, apiOk, createNamespace, createPod, deleteNamespaces, objectEvents, podEvents, recordedEvents, recordedObjectEvents, sharedCluster, uniqueName, type Cluster } from './helpers/cluster';
import { clusterRoleRules, ensureDeployed, serviceAccountToken, writeTokenKubeconfig } from './helpers/deploy';
import { assertRefusedOutsideRole, assertRoleGranted } from './helpers/least-privilege';
import { FaultRelay } from './helpers/proxy';
import { ServedFunction, stopAllFunctions } from './helpers/runtime';
import { terminalShellAlert } from './helpers/sidekick';

const NAME = 'cordon-node';
const GPU = { key: 'e2e.example.com/gpu', value: 'true', effect: 'NoSchedule' };
const OURS = { key: 'falco-response.io/compromised', value: 'true', effect: 'NoSchedule' };
/** The fixture's rule: cordon-node's default RULES is a container escape, so the e2e run names this one. */
const ENV = { RULES: 'Terminal shell in container', TAINT_EFFECT: 'NoSchedule' };

/** A Node object, as a kubelet would register it (none runs here). */
async function createNode(cluster: Cluster, name: string, extra: { labels?: Record<string, string>; taints?: object[] } = {}): Promise<any> {
  return apiOk(cluster, {
    method: 'POST',
    path: '/api/v1/nodes',
    body: { apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { 'kubernetes.io/hostname': name, ...extra.labels } }, spec: { taints: extra.taints ?? [] } },
  });
}

const readNode = (cluster: Cluster, name: string) => apiOk(cluster, { method: 'GET', path: `/api/v1/nodes/${name}` });

/**
 * The Events this project recorded about a node: in `default`, where the kubelet records a node's too; the node
 * controller's own (RegisteredNode, …) come whenever it syncs, so they are left out.
 */
const nodeEvents = async (cluster: Cluster, node: string): Promise<any[]> =>
  (await objectEvents(cluster, 'default', 'Node', node)).filter((e) => String(e.source?.component).startsWith('falco-response/'));

/** Taints other than the node controller's own (`node.kubernetes.io/…`), which come and go with the node's conditions. */
const notController = (taints: any[] | undefined) =>
  (taints ?? []).filter((t) => !String(t.key).startsWith('node.kubernetes.io/')).map((t) => ({ key: t.key, value: t.value, effect: t.effect }));

describe('e2e: cordon-node on a real API server, as its own ServiceAccount (built bundle, Node 14 runtime)', function () {
  let cluster: Cluster;
  let namespace: string;
  let scratch: string;
  let kubeconfig: string;
  const nodes: string[] = [];

  before(async function () {
    cluster = sharedCluster();
    await ensureDeployed(cluster);
    namespace = await createNamespace(cluster, 'cordon');
    scratch = mkdtempSync(path.join(tmpdir(), 'falco-response-e2e-cordon-'));
    kubeconfig = writeTokenKubeconfig(cluster, path.join(scratch, 'cordon-node.kubeconfig.json'), await serviceAccountToken(cluster, NAME));
  });

  after(async function () {
    await stopAllFunctions();
    await Promise.all(nodes.map((n) => api(cluster, { method: 'DELETE', path: `/api/v1/nodes/${n}` })));
    if (namespace !== undefined) await deleteNamespaces(cluster, [namespace]);
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  });

  /** A node with the GPU taint and a pod bound to it. */
  async function nodeWithPod(labels: Record<string, string> = {}): Promise<{ node: string; pod: string; nodeUid: string; podUid: string }> {
    const node = uniqueName('node');
    nodes.push(node);
    const created = await createNode(cluster, node, { labels, taints: [GPU] });
    const pod = uniqueName('pod');
    const bound = await createPod(cluster, namespace, pod, { app: 'e2e' }, { nodeName: node });
    return { node, pod, nodeUid: created.metadata.uid, podUid: bound.metadata.uid };
  }

  it('cordons and taints the node of the alerted pod, keeping its taint, with one Event on the node and one on the pod; the repeat changes nothing', async function () {
    // Given
    const { node, pod, nodeUid, podUid } = await nodeWithPod();
    const fn = await ServedFunction.start(NAME, { env: { KUBECONFIG: kubeconfig, ...ENV } });

    // When
    const answer = await fn.post(terminalShellAlert(namespace, pod));
    const repeat = await fn.post(terminalShellAlert(namespace, pod));

    // Then: the answer
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.body.status, 'done', `${answer.text}\n${fn.logs}`);
    assert.deepEqual(answer.body.target, { namespace, pod, node });
    assert.match(
      answer.body.message,
      new RegExp(`^cordoned the node '${node}' \\(the node of the pod '${pod}' in the namespace '${namespace}'\\): marked unschedulable; tainted falco-response.io/compromised=true:NoSchedule \\(\\d+ other taints? kept\\); its running pods were not evicted$`),
    );
    assert.equal(answer.body.details.changed, true);
    // Queued, recorded after the answer (lib/runner.ts): the Events are waited for below.
    assert.equal(answer.body.details.eventRecorded, 'queued', answer.text);
    // the node: unschedulable, our taint added and the one it had kept (the node controller's own may come and go)
    const found = await readNode(cluster, node);
    assert.equal(found.spec.unschedulable, true);
    assert.deepEqual(notController(found.spec.taints), [GPU, OURS]);
    // the Events: one on the node (in default, its uid), one on the pod (its uid), each naming the alert
    const onNode = await recordedObjectEvents(cluster, 'default', 'Node', node, 'FalcoResponseCordoned');
    const onPod = await recordedEvents(cluster, namespace, pod, 'FalcoResponseCordoned');
    assert.equal(onNode.length, 1, fn.logs);
    assert.equal(onPod.length, 1, fn.logs);
    assert.equal(onNode[0].involvedObject.uid, nodeUid);
    assert.equal(onNode[0].metadata.namespace, 'default');
    assert.equal(onPod[0].involvedObject.uid, podUid);
    for (const e of [...onNode, ...onPod]) {
      assert.equal(e.type, 'Warning');
      assert.equal(e.source.component, 'falco-response/cordon-node');
      assert.match(e.message, new RegExp(`^cordon-node cordoned the node '${node}' \\(.*\\) after the Falco rule "Terminal shell in container" \\(priority Critical, alert uuid 3c5d0a84-4b7e-4f44-9a21-2f0cbb4f8e11\\)$`));
    }
    // the repeat: nothing to change, no second Event
    assert.equal(repeat.body.status, 'done', repeat.text);
    assert.equal(repeat.body.details.changed, false, repeat.text);
    assert.equal(repeat.body.details.eventRecorded, false);
    assert.equal((await nodeEvents(cluster, node)).filter((e) => e.reason === 'FalcoResponseCordoned').length, 1);
    assert.equal((await podEvents(cluster, namespace, pod)).filter((e) => e.reason === 'FalcoResponseCordoned').length, 1);
    await fn.stop();
  });

  it('keeps a taint added between its read and its write: the API server refuses the stale list (409), and it reads again', async function () {
    // Given: the function talks to the API server through a relay that holds its first PATCH of the node until another
    // client has added a taint to it, so that the list it sends was read before that taint existed.
    const { node, pod } = await nodeWithPod();
    const OTHER = { key: 'e2e.example.com/maintenance', value: 'soon', effect: 'NoSchedule' };
    const relay = await FaultRelay.start(new URL(cluster.server), cluster.ca);
    const addOther = async () => {
      const current = await readNode(cluster, node);
      await apiOk(cluster, {
        method: 'PATCH',
        path: `/api/v1/nodes/${node}`,
        contentType: 'application/merge-patch+json',
        body: { metadata: { resourceVersion: current.metadata.resourceVersion }, spec: { taints: [...(current.spec.taints ?? []), OTHER] } },
      });
    };
    relay.inject({ method: 'PATCH', path: new RegExp(`^/api/v1/nodes/${node}$`), fault: (n) => (n === 1 ? { kind: 'hold', until: addOther() } : undefined) });
    const token = await serviceAccountToken(cluster, NAME);
    const relayed = writeTokenKubeconfig(cluster, path.join(scratch, 'relayed.kubeconfig.json'), token, relay.url);
    const fn = await ServedFunction.start(NAME, { env: { KUBECONFIG: relayed, ...ENV } });

    try {
      // When
      const answer = await fn.post(terminalShellAlert(namespace, pod));

      // Then: the held PATCH met a 409 from the real API server, the node was read again, and every taint is there
      assert.equal(answer.body.status, 'done', `${answer.text}\n${fn.logs}`);
      const patches = relay.requestsTo('PATCH', new RegExp(`^/api/v1/nodes/${node}$`));
      assert.equal(patches[0]?.upstreamStatus, 409, JSON.stringify(patches));
      assert.equal(patches[patches.length - 1]?.upstreamStatus, 200, JSON.stringify(patches));
      const found = await readNode(cluster, node);
      assert.equal(found.spec.unschedulable, true);
      assert.deepEqual(notController(found.spec.taints), [GPU, OTHER, OURS]);
      assert.deepEqual(relay.errors, []);
    } finally {
      await fn.stop();
      await relay.stop();
    }
  });

  it('leaves a control-plane node alone, and in a dry run writes nothing', async function () {
    // Given
    const controlPlane = await nodeWithPod({ 'node-role.kubernetes.io/control-plane': '' });
    const plain = await nodeWithPod();
    const fn = await ServedFunction.start(NAME, { env: { KUBECONFIG: kubeconfig, ...ENV } });
    const dry = await ServedFunction.start(NAME, { env: { KUBECONFIG: kubeconfig, ...ENV, DRY_RUN: 'true' } });

    // When
    const skipped = await fn.post(terminalShellAlert(namespace, controlPlane.pod));
    const wouldCordon = await dry.post(terminalShellAlert(namespace, plain.pod));

    // Then
    assert.deepEqual(skipped.body, {
      status: 'skipped',
      code: 'protected-node',
      reason: `the node '${controlPlane.node}' of the pod '${controlPlane.pod}' in the namespace '${namespace}' is a control-plane node (labelled node-role.kubernetes.io/control-plane): it is left alone (CORDON_CONTROL_PLANE is false)`,
      target: { namespace, pod: controlPlane.pod, node: controlPlane.node },
    });
    assert.equal(wouldCordon.body.status, 'done', wouldCordon.text);
    assert.equal(wouldCordon.body.dryRun, true);
    assert.match(wouldCordon.body.message, /^would cordon the node /);
    for (const { node } of [controlPlane, plain]) {
      const found = await readNode(cluster, node);
      assert.notEqual(found.spec.unschedulable, true, `${node} was cordoned`);
      assert.deepEqual(notController(found.spec.taints), [GPU]);
      assert.deepEqual(await nodeEvents(cluster, node), []);
    }
    await fn.stop();
    await dry.stop();
  });

  it('is granted exactly its generated ClusterRole (nodes get/patch, pods get, events create): each rule allowed, calls outside it refused 403', async function () {
    // Given
    const token = await serviceAccountToken(cluster, NAME);
    const rules = clusterRoleRules(NAME);
    assert.deepEqual(
      rules.map((r) => [r.apiGroups, r.resources, r.verbs]),
      [
        [[''], ['events'], ['create']],
        [[''], ['nodes'], ['get', 'patch']],
        [[''], ['pods'], ['get']],
      ],
    );
    const { node, pod } = await nodeWithPod();

    // When / Then
    await assertRoleGranted(cluster, token, rules, namespace);
    const refused = await assertRefusedOutsideRole(cluster, token, rules, { namespace, pod, serviceAccount: NAME, node });
    assert.ok(refused.length >= 20, `only ${refused.length} calls were probed`);
    // Among them: the node's status, deleting and replacing the node, evicting its pods.
    for (const probe of ['nodes/status', 'pods/eviction']) assert.ok(refused.some((p) => p.resource === probe), `${probe} was not probed`);
    assert.ok(refused.some((p) => p.resource === 'nodes' && p.verb === 'delete'));
    assert.notEqual((await api(cluster, { method: 'GET', path: `/api/v1/nodes/${node}` })).status, 404, 'a refused call removed the node');
  });
});

/**
 * cordon-node on the node that really runs the alerted pod: the scheduler then keeps a new pod off it (Pending,
 * Unschedulable), while the pods already there keep running. Last of the suite, since it cordons the only node; its
 * after hook uncordons it, removes the taints it added, and proves the node usable again by a pod scheduled there.
 */
import { strict as assert } from 'assert';
import { terminalShellAlert } from '../e2e/helpers/sidekick';
import { alert } from '../helpers/fixtures';
import {
  deployedOnce,
  deploymentEnv as deploymentEnvOf,
  FUNCTIONS_NAMESPACE,
  NODE_IMAGE,
  sendFromClient,
  setDeploymentEnv,
  settled,
  withValues,
  WORKLOAD_NAMESPACE,
  type Deployed,
  type SidekickAnswer,
} from './helpers/deploy';
import { getJson, kubectl, kubectlOk, objectEvents, recordedEvents, waitFor } from './helpers/node';

const FN = 'cordon-node';
const URL = `http://${FN}.${FUNCTIONS_NAMESPACE}.svc.cluster.local:8080`;
const UUID = alert('terminal-shell').uuid as string;
const REASON = 'FalcoResponseCordoned';
/** A taint the node has before the alert, which must survive it; PreferNoSchedule keeps nothing off the node by itself. */
const PREEXISTING = { key: 'e2e.example.com/preexisting', value: 'kept', effect: 'PreferNoSchedule' };
const OURS = { key: 'falco-response.io/compromised', value: 'true', effect: 'NoSchedule' };
/** The node controller's own taint of a cordoned node (TaintNodesByCondition). */
const UNSCHEDULABLE = { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' };
const ALERTED = 'cordon-alerted';
const LATECOMER = 'cordon-latecomer';

const taintsOf = (node: any) => ((node.spec.taints ?? []) as any[]).map((t) => ({ key: t.key, ...(t.value === undefined ? {} : { value: t.value }), effect: t.effect }));
const sameTaint = (a: any) => (b: any) => a.key === b.key && a.effect === b.effect;

function sleeper(name: string): any {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: WORKLOAD_NAMESPACE, labels: { app: 'cordon' } },
    spec: {
      terminationGracePeriodSeconds: 1,
      automountServiceAccountToken: false,
      securityContext: { runAsNonRoot: true, runAsUser: 1000 },
      containers: [{ name: 'c', image: NODE_IMAGE, imagePullPolicy: 'IfNotPresent', command: ['node', '-e', 'setInterval(() => {}, 1e9)'],
        resources: { requests: { cpu: '5m', memory: '16Mi' }, limits: { memory: '64Mi' } } }],
    },
  };
}

/** The count of PATCH calls on nodes (not nodes/status, which the kubelet writes) the API server has served. */
async function nodePatches(): Promise<number> {
  const metrics = await kubectlOk(['get', '--raw', '/metrics'], undefined, 60000);
  let total = 0;
  for (const line of metrics.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    if (line.includes('resource="nodes"') && line.includes('subresource=""') && line.includes('verb="PATCH"')) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

/** The container env of the cordon-node Deployment, and a change of it, rolled out with no old pod left answering. */
const deploymentEnv = () => deploymentEnvOf(FN);
const setEnv = (env: any[]) => setDeploymentEnv(FN, env);

async function send(d: Deployed, pod: string): Promise<{ answer: SidekickAnswer; body: any }> {
  const answer = await waitFor(`an answer from ${FN}`, async () => {
    const a = await sendFromClient(d, terminalShellAlert(WORKLOAD_NAMESPACE, pod), URL);
    return a.status === undefined ? undefined : a;
  }, 30000);
  assert.equal(answer.status, 200, answer.body);
  return { answer, body: JSON.parse(answer.body ?? 'null') };
}

describe('node: cordon-node cordons the node a running pod is on, and the scheduler keeps new pods off it', function () {
  this.timeout(300000);
  let d: Deployed;
  let nodeName: string;
  let originalEnv: any[] | undefined;
  let originalTaints: any[];

  before(async function () {
    this.timeout(600000);
    d = await deployedOnce();
    await settled(FN);
    originalEnv = await deploymentEnv();
    await kubectlOk(['apply', '-f', '-'], JSON.stringify(sleeper(ALERTED)));
    await kubectlOk(['wait', '-n', WORKLOAD_NAMESPACE, '--for=condition=Ready', `pod/${ALERTED}`, '--timeout=120s'], undefined, 130000);
    nodeName = (await getJson(['pod', ALERTED, '-n', WORKLOAD_NAMESPACE])).spec.nodeName;
    const node = await getJson(['node', nodeName]);
    originalTaints = taintsOf(node);
    assert.notEqual(node.spec.unschedulable, true, `${nodeName} is cordoned before the test`);
  });

  after(async function () {
    this.timeout(300000);
    // Undo everything, each step whatever the others did, then prove the node as it was and usable.
    if (nodeName !== undefined) {
      await kubectl(['uncordon', nodeName]);
      for (const t of [OURS, PREEXISTING]) {
        const node = await getJson(['node', nodeName]);
        if (taintsOf(node).some(sameTaint(t)) && !originalTaints.some(sameTaint(t))) await kubectl(['taint', 'node', nodeName, `${t.key}:${t.effect}-`]);
      }
      await waitFor(`${nodeName} uncordoned with its taints as before`, async () => {
        const node = await getJson(['node', nodeName]);
        return node.spec.unschedulable !== true && JSON.stringify(taintsOf(node)) === JSON.stringify(originalTaints) ? true : undefined;
      }, 60000, 500);
      if ((await kubectl(['get', 'pod', LATECOMER, '-n', WORKLOAD_NAMESPACE])).code === 0) {
        await kubectlOk(['wait', '-n', WORKLOAD_NAMESPACE, '--for=condition=Ready', `pod/${LATECOMER}`, '--timeout=120s'], undefined, 130000);
        assert.equal((await getJson(['pod', LATECOMER, '-n', WORKLOAD_NAMESPACE])).spec.nodeName, nodeName, `${LATECOMER} was not scheduled on ${nodeName} once uncordoned`);
      }
    }
    await kubectl(['delete', 'pod', ALERTED, LATECOMER, '-n', WORKLOAD_NAMESPACE, '--ignore-not-found', '--wait=false']);
    if (originalEnv !== undefined) await setEnv(originalEnv);
  });

  it('leaves a node listed in PROTECTED_NODES alone', async () => {
    // Given cordon-node answering the fixture's rule, with the node protected (the env of the applied Deployment, as the README says)
    await setEnv(withValues(originalEnv!, { RULES: 'Terminal shell in container', PROTECTED_NODES: nodeName }));
    const patches = await nodePatches();
    // When an alert names a pod running on it
    const { answer, body } = await send(d, ALERTED);
    // Then it is skipped, and the node is as it was
    assert.deepEqual([body.status, body.code, body.target], ['skipped', 'protected-node', { namespace: WORKLOAD_NAMESPACE, pod: ALERTED, node: nodeName }], answer.body);
    const node = await getJson(['node', nodeName]);
    assert.notEqual(node.spec.unschedulable, true);
    assert.deepEqual(taintsOf(node), originalTaints);
    assert.equal(await nodePatches(), patches, 'the node was patched');
    assert.deepEqual((await objectEvents('default', 'Node', nodeName)).filter((e) => e.reason === REASON), []);
  });

  it('cordons and taints it keeping its taint, with Events on the node and the pod; a repeat writes nothing; a new pod stays Pending', async () => {
    // Given the node with a taint of its own, and cordon-node configured to taint too (no longer protecting it)
    await kubectlOk(['taint', 'node', nodeName, `${PREEXISTING.key}=${PREEXISTING.value}:${PREEXISTING.effect}`]);
    // SETTLED_SECONDS 0: the repeat below must read the node again and find it cordoned, not be answered from memory
    await setEnv(withValues(originalEnv!, { RULES: 'Terminal shell in container', TAINT_EFFECT: 'NoSchedule', SETTLED_SECONDS: '0' }));
    const before = await getJson(['node', nodeName]);
    const alerted = await getJson(['pod', ALERTED, '-n', WORKLOAD_NAMESPACE]);
    const patchesBefore = await nodePatches();

    // When an alert names the running pod
    const { answer, body } = await send(d, ALERTED);

    // Then the answer: cordoned and tainted, the node's taints kept
    assert.equal(body.status, 'done', answer.body);
    assert.match(
      body.message,
      new RegExp(`^cordoned the node '${nodeName}' \\(the node of the pod '${ALERTED}' in the namespace '${WORKLOAD_NAMESPACE}'\\): marked unschedulable; tainted falco-response.io/compromised=true:NoSchedule \\(${taintsOf(before).length} other taints? kept\\); its running pods were not evicted$`),
    );
    assert.deepEqual([body.details.changed, body.details.cordoned, body.details.tainted, body.details.taintsKept], [true, true, true, taintsOf(before).length], answer.body);
    // the node: unschedulable, its taint kept, ours added; and the node controller adds its own (a concurrent writer of the list)
    const node = await waitFor('the node controller taint of a cordoned node', async () => {
      const n = await getJson(['node', nodeName]);
      return taintsOf(n).some(sameTaint(UNSCHEDULABLE)) ? n : undefined;
    }, 60000, 250);
    assert.equal(node.spec.unschedulable, true);
    assert.deepEqual(taintsOf(node).filter((t) => !t.key.startsWith('node.kubernetes.io/')), [...originalTaints, PREEXISTING, OURS]);
    const patchesAfter = await nodePatches();
    assert.ok(patchesAfter > patchesBefore, 'the cordon was not counted as a PATCH of the node');
    // Events: one on the node (in default, where the kubelet records its own), one on the pod
    const [onNode, ...moreOnNode] = await recordedEvents('default', 'Node', nodeName, REASON);
    const [onPod, ...moreOnPod] = await recordedEvents(WORKLOAD_NAMESPACE, 'Pod', ALERTED, REASON);
    assert.deepEqual([moreOnNode, moreOnPod], [[], []]);
    assert.deepEqual([onNode.involvedObject.uid, onPod.involvedObject.uid], [node.metadata.uid, alerted.metadata.uid]);
    for (const e of [onNode, onPod]) {
      assert.equal(e.source.component, 'falco-response/cordon-node');
      assert.ok(e.message.includes(`cordoned the node '${nodeName}'`) && e.message.includes(`alert uuid ${UUID}`), e.message);
    }
    // the pod it was about keeps running on it
    const still = await getJson(['pod', ALERTED, '-n', WORKLOAD_NAMESPACE]);
    assert.deepEqual([still.metadata.uid, still.status.phase, still.spec.nodeName], [alerted.metadata.uid, 'Running', nodeName]);

    // When the same alert comes again
    const repeat = await send(d, ALERTED);
    // Then nothing is written and no Event recorded
    assert.equal(repeat.body.status, 'done', repeat.answer.body);
    assert.match(repeat.body.message, /is already cordoned \(already unschedulable; already tainted falco-response.io\/compromised=true:NoSchedule\): nothing to change$/);
    assert.deepEqual([repeat.body.details.changed, repeat.body.details.eventRecorded], [false, false], repeat.answer.body);
    assert.equal(await nodePatches(), patchesAfter, 'the repeat patched the node');
    const latest = await getJson(['node', nodeName]);
    assert.deepEqual([latest.spec.unschedulable, taintsOf(latest)], [true, taintsOf(node)]);

    // When a new pod is created
    await kubectlOk(['apply', '-f', '-'], JSON.stringify(sleeper(LATECOMER)));
    // Then the scheduler finds no node for it: it stays Pending, on no node
    const pending = await waitFor(`${LATECOMER} found unschedulable`, async () => {
      const p = await getJson(['pod', LATECOMER, '-n', WORKLOAD_NAMESPACE]);
      const scheduled = (p.status.conditions ?? []).find((c: any) => c.type === 'PodScheduled');
      return scheduled?.status === 'False' && scheduled.reason === 'Unschedulable' ? { pod: p, message: scheduled.message as string } : undefined;
    }, 60000, 250);
    console.log(`      the scheduler on ${LATECOMER}: ${pending.message}`);
    assert.deepEqual([pending.pod.status.phase, pending.pod.spec.nodeName], ['Pending', undefined]);
    assert.match(pending.message, /unschedulable/);
    // and the counts of Events stay one each after the repeat
    assert.equal((await objectEvents('default', 'Node', nodeName)).filter((e) => e.reason === REASON).length, 1);
    assert.equal((await objectEvents(WORKLOAD_NAMESPACE, 'Pod', ALERTED)).filter((e) => e.reason === REASON).length, 1);
  });
});

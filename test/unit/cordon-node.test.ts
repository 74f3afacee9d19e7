import { strict as assert } from 'assert';
import action from '../../functions/cordon-node/action';
import { memoryLogger } from '../../lib/log';
import { ConfigurationError, readParams } from '../../lib/params';
import { actionHandler } from '../helpers/recorded-handler';
import { serveApi, serveCluster, testKube } from '../helpers/fake-cluster';
import { alert, kubelessContext, kubelessEvent, nodeObject, scheduledPodObject } from '../helpers/fixtures';
import { MemoryCluster, type Reply } from '../helpers/memory-cluster';

const NS = 'prod';
const POD = `/api/v1/namespaces/${NS}/pods/kubecon`;
const NODE = '/api/v1/nodes/worker-1';
const NODE_EVENTS = '/api/v1/namespaces/default/events';
const POD_EVENTS = `/api/v1/namespaces/${NS}/events`;
const WHERE = "the node 'worker-1' (the node of the pod 'kubecon' in the namespace 'prod')";
const OURS = { key: 'falco-response.io/compromised', value: 'true', effect: 'NoSchedule' };
const GPU = { key: 'gpu', value: 'true', effect: 'NoSchedule' };
// As the node controller writes it, with a timeAdded that a merge patch must send back as it was read.
const NOT_READY = { key: 'node.kubernetes.io/not-ready', effect: 'NoExecute', timeAdded: '2026-12-01T20:00:00Z' };
const SUMMARY = 'the Falco rule "Terminal shell in container" (priority Critical, alert uuid 3c5d0a84-4b7e-4f44-9a21-2f0cbb4f8e11)';

function alertOnProd() {
  const a = alert('terminal-shell');
  a.output_fields['k8s.ns.name'] = NS;
  return a;
}

/** A cluster with the alert's pod on worker-1, and worker-1 as `node` makes it. */
function clusterWith(node: ReturnType<typeof nodeObject> = nodeObject('worker-1')): MemoryCluster {
  return new MemoryCluster().add(scheduledPodObject(NS, 'kubecon', 'worker-1')).add(node);
}

/** One alert through cordon-node's handler (a real KubeClient behind nock), every rule selected, answered once its Events are recorded. */
async function run(env: Record<string, string> = {}) {
  const log = memoryLogger();
  const handler = actionHandler(action, { env: { RULES: '*', ...env }, kube: testKube(), log, ownNamespace: 'falco-response' });
  const { event, response } = kubelessEvent(alertOnProd());
  const answer = await handler(event, kubelessContext());
  return { answer, status: response.statusCode, log: log.lines };
}

const calls = (cluster: MemoryCluster) => cluster.take().map((c) => `${c.method} ${c.path}`);
const nodeSpec = (cluster: MemoryCluster) => (cluster.objects.get(NODE) as { spec: Record<string, unknown> }).spec;
const eventsOf = (cluster: MemoryCluster, path: string) => cluster.under(`${path}/`) as any[];

const done = (message: string, facts: Record<string, unknown>, changed = true, eventRecorded: 'queued' | false = changed ? 'queued' : false) => ({
  status: 'done',
  action: 'cordon-node',
  target: { namespace: NS, pod: 'kubecon', node: 'worker-1' },
  dryRun: false,
  message,
  details: { touched: [{ kind: 'Node', name: 'worker-1', changed }], changed, eventRecorded, ...facts },
});

const skipped = (code: string, reason: string) => ({ status: 'skipped', code, reason, target: { namespace: NS, pod: 'kubecon', node: 'worker-1' } });

interface Case {
  readonly name: string;
  readonly env?: Record<string, string>;
  readonly node?: ReturnType<typeof nodeObject>;
  readonly answer: Record<string, unknown>;
  readonly calls: readonly string[];
  /** The node's spec afterwards (podCIDR is the fixture's own field, kept). */
  readonly spec: Record<string, unknown>;
  /** The reason of the Event now on the node and on the pod, or none. */
  readonly event?: string;
  readonly eventMessage?: string;
}

const READS = [`GET ${POD}`, `GET ${NODE}`];
const WRITES = [`PATCH ${NODE}`, `POST ${NODE_EVENTS}`, `POST ${POD_EVENTS}`];
const CIDR = { podCIDR: '10.244.1.0/24' };

const CASES: readonly Case[] = [
  {
    name: 'cordons the node (no taint by default), with an Event on the node and on the pod',
    answer: done(`cordoned ${WHERE}: marked unschedulable; its running pods were not evicted`, { cordoned: true, taint: null, tainted: false, taintsKept: 0 }),
    calls: [...READS, ...WRITES],
    spec: { ...CIDR, unschedulable: true },
    event: 'FalcoResponseCordoned',
    eventMessage: `cordon-node cordoned the node 'worker-1' (marked unschedulable) after ${SUMMARY}`,
  },
  {
    name: 'taints it too, keeping every taint it had (timeAdded as read)',
    env: { TAINT_EFFECT: 'NoSchedule' },
    node: nodeObject('worker-1', { taints: [GPU, NOT_READY] }),
    answer: done(`cordoned ${WHERE}: marked unschedulable; tainted falco-response.io/compromised=true:NoSchedule (2 other taints kept); its running pods were not evicted`, {
      cordoned: true,
      taint: 'falco-response.io/compromised=true:NoSchedule',
      tainted: true,
      taintsKept: 2,
    }),
    calls: [...READS, ...WRITES],
    spec: { ...CIDR, unschedulable: true, taints: [GPU, NOT_READY, OURS] },
    event: 'FalcoResponseCordoned',
    eventMessage: `cordon-node cordoned the node 'worker-1' (marked unschedulable; tainted falco-response.io/compromised=true:NoSchedule (2 other taints kept)) after ${SUMMARY}`,
  },
  {
    name: 'a NoExecute taint with a configured key and value, and says that Kubernetes evicts what does not tolerate it',
    env: { TAINT_EFFECT: 'NoExecute', TAINT_KEY: 'security.example.com/quarantine', TAINT_VALUE: 'falco' },
    answer: done(
      `cordoned ${WHERE}: marked unschedulable; tainted security.example.com/quarantine=falco:NoExecute (0 other taints kept); Kubernetes evicts its pods that do not tolerate the taint`,
      { cordoned: true, taint: 'security.example.com/quarantine=falco:NoExecute', tainted: true, taintsKept: 0 },
    ),
    calls: [...READS, ...WRITES],
    spec: { ...CIDR, unschedulable: true, taints: [{ key: 'security.example.com/quarantine', value: 'falco', effect: 'NoExecute' }] },
    event: 'FalcoResponseCordoned',
  },
  {
    name: 'replaces a taint of its own key and effect that has another value (TAINT_VALUE changed), and no other',
    env: { TAINT_EFFECT: 'NoSchedule' },
    node: nodeObject('worker-1', { unschedulable: true, taints: [{ ...OURS, value: 'old' }, { ...OURS, effect: 'NoExecute' }, GPU] }),
    answer: done(`cordoned ${WHERE}: already unschedulable; tainted falco-response.io/compromised=true:NoSchedule (2 other taints kept); its running pods were not evicted`, {
      cordoned: false,
      taint: 'falco-response.io/compromised=true:NoSchedule',
      tainted: true,
      taintsKept: 2,
    }),
    calls: [...READS, ...WRITES],
    spec: { ...CIDR, unschedulable: true, taints: [{ ...OURS, effect: 'NoExecute' }, GPU, OURS] },
    event: 'FalcoResponseCordoned',
  },
  {
    name: 'writes nothing and records no Event on a node already cordoned and tainted',
    env: { TAINT_EFFECT: 'NoSchedule' },
    node: nodeObject('worker-1', { unschedulable: true, taints: [GPU, OURS] }),
    answer: done(
      `${WHERE} is already cordoned (already unschedulable; already tainted falco-response.io/compromised=true:NoSchedule): nothing to change`,
      { cordoned: false, taint: 'falco-response.io/compromised=true:NoSchedule', tainted: false, taintsKept: 2 },
      false,
    ),
    calls: READS,
    spec: { ...CIDR, unschedulable: true, taints: [GPU, OURS] },
  },
  {
    name: 'leaves a control-plane node alone',
    node: nodeObject('worker-1', { labels: { 'node-role.kubernetes.io/control-plane': '' } }),
    answer: skipped(
      'protected-node',
      "the node 'worker-1' of the pod 'kubecon' in the namespace 'prod' is a control-plane node (labelled node-role.kubernetes.io/control-plane): it is left alone (CORDON_CONTROL_PLANE is false)",
    ),
    calls: READS,
    spec: CIDR,
  },
  {
    name: 'leaves a node labelled as a master (before Kubernetes 1.20) alone',
    node: nodeObject('worker-1', { labels: { 'node-role.kubernetes.io/master': 'true' } }),
    answer: skipped(
      'protected-node',
      "the node 'worker-1' of the pod 'kubecon' in the namespace 'prod' is a control-plane node (labelled node-role.kubernetes.io/master): it is left alone (CORDON_CONTROL_PLANE is false)",
    ),
    calls: READS,
    spec: CIDR,
  },
  {
    name: 'cordons a control-plane node when CORDON_CONTROL_PLANE is true',
    env: { CORDON_CONTROL_PLANE: 'true' },
    node: nodeObject('worker-1', { labels: { 'node-role.kubernetes.io/control-plane': '' } }),
    answer: done(`cordoned ${WHERE}: marked unschedulable; its running pods were not evicted`, { cordoned: true, taint: null, tainted: false, taintsKept: 0 }),
    calls: [...READS, ...WRITES],
    spec: { ...CIDR, unschedulable: true },
    event: 'FalcoResponseCordoned',
  },
  {
    name: 'leaves a node listed in PROTECTED_NODES alone',
    env: { PROTECTED_NODES: 'bastion, worker-1' },
    answer: skipped('protected-node', "the node 'worker-1' of the pod 'kubecon' in the namespace 'prod' is protected (PROTECTED_NODES): it is left alone"),
    calls: READS,
    spec: CIDR,
  },
  {
    name: 'dry run: reads, says what it would change, writes nothing',
    env: { DRY_RUN: 'true', TAINT_EFFECT: 'NoSchedule' },
    node: nodeObject('worker-1', { taints: [GPU] }),
    answer: {
      ...done(
        `would cordon ${WHERE}: would mark it unschedulable; would taint it falco-response.io/compromised=true:NoSchedule (1 other taint kept)`,
        {
          cordoned: true,
          taint: 'falco-response.io/compromised=true:NoSchedule',
          tainted: true,
          taintsKept: 1,
          patch: { metadata: { uid: 'uid-worker-1', resourceVersion: '7' }, spec: { unschedulable: true, taints: [GPU, OURS] } },
        },
        true,
        false,
      ),
      dryRun: true,
    },
    calls: READS,
    spec: { ...CIDR, taints: [GPU] },
  },
];

describe('cordon-node', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      // Given
      const cluster = clusterWith(c.node);
      serveCluster(cluster);

      // When
      const { answer, status } = await run(c.env);

      // Then
      assert.equal(status, 200);
      assert.deepEqual(answer, c.answer);
      assert.deepEqual(calls(cluster), c.calls);
      assert.deepEqual(nodeSpec(cluster), c.spec);
      const events = [...eventsOf(cluster, NODE_EVENTS), ...eventsOf(cluster, POD_EVENTS)];
      assert.deepEqual(
        events.map((e) => [e.reason, e.involvedObject]),
        c.event === undefined
          ? []
          : [
              [c.event, { apiVersion: 'v1', kind: 'Node', name: 'worker-1', uid: 'uid-worker-1' }],
              [c.event, { apiVersion: 'v1', kind: 'Pod', name: 'kubecon', namespace: NS, uid: 'uid-kubecon' }],
            ],
      );
      if (c.eventMessage !== undefined) for (const e of events) assert.equal(e.message, c.eventMessage);
    });
  }

  it('sends the taints with the resourceVersion read (a merge patch replaces the list whole), and the uid', async () => {
    const cluster = clusterWith(nodeObject('worker-1', { taints: [GPU] }));
    serveCluster(cluster);
    await run({ TAINT_EFFECT: 'NoSchedule' });
    const patch = cluster.take().find((c) => c.method === 'PATCH');
    assert.deepEqual(patch?.body, { metadata: { uid: 'uid-worker-1', resourceVersion: '7' }, spec: { unschedulable: true, taints: [GPU, OURS] } });
  });

  it('marks it unschedulable without the resourceVersion when no taint is written: that overwrites nobody', async () => {
    const cluster = clusterWith();
    serveCluster(cluster);
    await run();
    assert.deepEqual(cluster.take().find((c) => c.method === 'PATCH')?.body, { metadata: { uid: 'uid-worker-1' }, spec: { unschedulable: true } });
  });

  it('keeps a taint someone adds while it writes: the 409 makes it read the node again and write again', async () => {
    // Given: the first PATCH meets a node that changed since it was read (another controller added a taint)
    const cluster = clusterWith(nodeObject('worker-1', { taints: [GPU] }));
    const OTHER = { key: 'example.com/maintenance', value: 'soon', effect: 'NoSchedule' };
    let raced = false;
    serveApi((method, path, body, authorization) => {
      if (method === 'PATCH' && !raced) {
        raced = true;
        const node = cluster.objects.get(NODE) as any;
        cluster.objects.set(NODE, { ...node, metadata: { ...node.metadata, resourceVersion: '8' }, spec: { ...node.spec, taints: [...node.spec.taints, OTHER] } });
      }
      return cluster.serve(method, path, body, authorization);
    });

    // When
    const { answer } = await run({ TAINT_EFFECT: 'NoSchedule' });

    // Then
    assert.equal(answer.message, `cordoned ${WHERE}: marked unschedulable; tainted falco-response.io/compromised=true:NoSchedule (2 other taints kept); its running pods were not evicted`);
    assert.deepEqual(calls(cluster), [...READS, `PATCH ${NODE}`, `GET ${NODE}`, ...WRITES]);
    assert.deepEqual(nodeSpec(cluster), { ...CIDR, unschedulable: true, taints: [GPU, OTHER, OURS] });
  });

  it('reports its own write when the answer to it was lost (503) and the retry met the 409 its own write caused', async () => {
    // Given: the first PATCH is carried out, and its answer is a 503
    const cluster = clusterWith(nodeObject('worker-1', { taints: [GPU] }));
    let lost = false;
    serveApi((method, path, body, authorization): Reply => {
      const reply = cluster.serve(method, path, body, authorization);
      if (method !== 'PATCH' || lost) return reply;
      lost = true;
      return [503, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'ServiceUnavailable', code: 503, message: 'etcd leader changed' }];
    });

    // When
    const { answer } = await run({ TAINT_EFFECT: 'NoSchedule' });

    // Then: changed, with both Events, and the answer says how it knows
    assert.equal(
      answer.message,
      `cordoned ${WHERE}: marked unschedulable; tainted falco-response.io/compromised=true:NoSchedule (1 other taint kept) ` +
        '(the answer to an earlier attempt was lost, and the retry found the node so); its running pods were not evicted',
    );
    assert.deepEqual(answer.details, {
      touched: [{ kind: 'Node', name: 'worker-1', changed: true }],
      changed: true,
      eventRecorded: 'queued',
      cordoned: true,
      taint: 'falco-response.io/compromised=true:NoSchedule',
      tainted: true,
      taintsKept: 1,
    });
    assert.deepEqual(calls(cluster), [...READS, `PATCH ${NODE}`, `PATCH ${NODE}`, `GET ${NODE}`, `POST ${NODE_EVENTS}`, `POST ${POD_EVENTS}`]);
    assert.deepEqual(nodeSpec(cluster), { ...CIDR, unschedulable: true, taints: [GPU, OURS] });
  });

  it('the same alert again: one write and one pair of Events in all, the repeat answers changed false', async () => {
    const cluster = clusterWith(nodeObject('worker-1', { taints: [GPU] }));
    serveCluster(cluster);
    const first = await run({ TAINT_EFFECT: 'NoSchedule' });
    const second = await run({ TAINT_EFFECT: 'NoSchedule' });
    assert.equal((first.answer.details as any).changed, true);
    assert.equal((second.answer.details as any).changed, false);
    assert.equal((second.answer.details as any).eventRecorded, false);
    assert.deepEqual(calls(cluster), [...READS, ...WRITES, ...READS]);
    assert.equal(eventsOf(cluster, NODE_EVENTS).length + eventsOf(cluster, POD_EVENTS).length, 2);
  });

  it('skips, node-gone, when the node is deleted before the write, and records no Event', async () => {
    const cluster = clusterWith();
    serveCluster(cluster);
    cluster.failNext(1, [404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404, message: 'nodes "worker-1" not found' }], { method: 'PATCH' });
    const { answer } = await run();
    assert.deepEqual(answer, skipped('node-gone', "the node 'worker-1' was deleted before it could be cordoned"));
    assert.deepEqual(eventsOf(cluster, NODE_EVENTS), []);
  });

  it('skips, node-gone, when the name holds a new node by the time it writes (the uid differs)', async () => {
    const cluster = clusterWith(nodeObject('worker-1', { taints: [GPU] }));
    serveApi((method, path, body, authorization) => {
      if (method === 'PATCH') cluster.objects.set(NODE, nodeObject('worker-1', { uid: 'uid-newcomer', resourceVersion: '50' }));
      return cluster.serve(method, path, body, authorization);
    });
    const { answer } = await run({ TAINT_EFFECT: 'NoSchedule' });
    assert.deepEqual(
      answer,
      skipped('node-gone', "the node 'worker-1' was replaced by a new node of the same name since it was read (uid \"uid-worker-1\"): the new node is left alone"),
    );
    assert.equal(nodeSpec(cluster).unschedulable, undefined);
  });

  it('fails, naming the node, when the node changes at every write', async () => {
    const cluster = clusterWith(nodeObject('worker-1', { taints: [GPU] }));
    let version = 100;
    serveApi((method, path, body, authorization) => {
      if (method === 'PATCH') {
        const node = cluster.objects.get(NODE) as any;
        cluster.objects.set(NODE, { ...node, metadata: { ...node.metadata, resourceVersion: String(++version) } });
      }
      return cluster.serve(method, path, body, authorization);
    });
    const { answer, status } = await run({ TAINT_EFFECT: 'NoSchedule' });
    assert.equal(status, 500);
    assert.deepEqual(answer, {
      status: 'failed',
      error: "the node 'worker-1' was not cordoned: it kept changing while it was written (the API server answered 409 Conflict 5 times)",
      target: { namespace: NS, pod: 'kubecon', node: 'worker-1' },
    });
  });

  const broken: [string, (node: any) => unknown, string][] = [
    ['an answer without unschedulable', (node) => ({ ...node, spec: {} }), 'spec.unschedulable: expected true'],
    ['an answer that lost a kept taint', (node) => ({ ...node, spec: { unschedulable: true, taints: [OURS] } }), 'spec.taints: gpu=true:NoSchedule missing'],
    ['another node', (node) => ({ ...node, metadata: { ...node.metadata, name: 'worker-2' } }), 'metadata.name: expected "worker-1", got "worker-2"'],
    ['an HTML page', () => '<html>ok</html>', 'expected a Node, got "<html>ok</html>"'],
  ];
  for (const [what, answerOf, problem] of broken) {
    it(`fails, and records no Event, when the API server answers the patch with ${what} (a broken proxy): whether it was patched is not known`, async () => {
      const cluster = clusterWith(nodeObject('worker-1', { taints: [GPU] }));
      serveApi((method, path, body, authorization): Reply => {
        const reply = cluster.serve(method, path, body, authorization);
        return method === 'PATCH' ? [200, answerOf(reply[1])] : reply;
      });
      const { answer, status } = await run({ TAINT_EFFECT: 'NoSchedule' });
      assert.equal(status, 500);
      assert.match(String(answer.error), /^patch the node 'worker-1' failed: the API server's answer is not that node \(/);
      assert.ok(String(answer.error).includes(problem), String(answer.error));
      assert.ok(String(answer.error).endsWith('): whether it was patched is not known'), String(answer.error));
      assert.deepEqual(eventsOf(cluster, NODE_EVENTS), []);
    });
  }

  it('keeps the change when the Event on the node cannot be recorded (the answer said queued), and warns naming it', async () => {
    const cluster = clusterWith();
    serveCluster(cluster);
    cluster.failNext(1, [403, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Forbidden', code: 403, message: 'forbidden' }], { method: 'POST', path: NODE_EVENTS });
    const { answer, log } = await run();
    assert.equal(answer.status, 'done');
    assert.equal((answer.details as any).eventRecorded, 'queued');
    assert.equal(nodeSpec(cluster).unschedulable, true);
    assert.equal(eventsOf(cluster, POD_EVENTS).length, 1, 'the Event on the pod is recorded all the same');
    const warning = log.find((l) => l.level === 'warn' && String(l.message).includes('audit event'));
    assert.equal(warning?.message, "the node 'worker-1' was cordoned but the audit event on the node 'worker-1' could not be recorded");
    assert.match(String(warning?.error), /^create an event about the node 'worker-1' failed: the API server answered 403 Forbidden: forbidden/);
  });

  describe('parameters', () => {
    const problems: [Record<string, string>, string][] = [
      [{ TAINT_EFFECT: 'PreferNoSchedule' }, 'TAINT_EFFECT: expected NoSchedule, NoExecute, or nothing for no taint, got "PreferNoSchedule"'],
      [
        { TAINT_KEY: 'node.kubernetes.io/unschedulable' },
        'TAINT_KEY: expected a taint key outside the prefixes Kubernetes reserves (kubernetes.io, k8s.io), such as falco-response.io/compromised, got "node.kubernetes.io/unschedulable"',
      ],
      [
        { TAINT_KEY: 'bad key' },
        'TAINT_KEY: expected a taint key: an optional DNS subdomain prefix and \'/\', then 1 to 63 letters, digits, \'-\', \'_\' or \'.\', starting and ending with a letter or digit, got "bad key"',
      ],
      [{ TAINT_VALUE: 'a b' }, 'TAINT_VALUE: expected a taint value: at most 63 letters, digits, \'-\', \'_\' or \'.\', starting and ending with a letter or digit, or nothing, got "a b"'],
      [{ PROTECTED_NODES: 'ok,Not_A_Node' }, 'PROTECTED_NODES: expected a comma-separated list of node names ("Not_A_Node" is not one), got "ok,Not_A_Node"'],
      [{ CORDON_CONTROL_PLANE: 'yes' }, 'CORDON_CONTROL_PLANE: expected true or false, got "yes"'],
    ];
    for (const [env, message] of problems) {
      it(`refuses ${JSON.stringify(env)}: ${message}`, () => {
        assert.throws(
          () => readParams(action.ownParameters, env),
          (error: unknown) => error instanceof ConfigurationError && error.problems.length === 1 && error.problems[0] === message,
        );
      });
    }

    it('defaults: no taint, key falco-response.io/compromised=true, control-plane nodes and no listed node left alone', () => {
      assert.deepEqual(readParams(action.ownParameters, {}), {
        taintEffect: undefined,
        taintKey: 'falco-response.io/compromised',
        taintValue: 'true',
        cordonControlPlane: false,
        protectedNodes: [],
      });
    });
  });

  it('declares exactly nodes get/patch, pods get, events create, and its checks', () => {
    assert.deepEqual(action.permissions, [
      { apiGroup: '', resource: 'events', verbs: ['create'] },
      { apiGroup: '', resource: 'nodes', verbs: ['get', 'patch'] },
      { apiGroup: '', resource: 'pods', verbs: ['get'] },
    ]);
    assert.deepEqual(action.checks.slice(-2).map((c) => c.name), ['control-plane', 'protected-nodes']);
  });
});

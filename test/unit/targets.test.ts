import { strict as assert } from 'assert';
import nock from 'nock';
import { defineAction, type Action, type ActionContext, type ActionResult } from '../../lib/action';
import { memoryLogger } from '../../lib/log';
import type { ParamSpecs } from '../../lib/params';
import type { TargetKind, TargetSpec } from '../../lib/resolve';
import { actionHandler } from '../../lib/runner';
import { AUDIT_OBJECT_TARGET } from '../../lib/targets/audit-object';
import { NODE_TARGET } from '../../lib/targets/node';
import { POD_TARGET } from '../../lib/targets/pod';
import { fakeApi, podObject, testKube } from '../helpers/fake-cluster';
import { alert, kubelessContext, kubelessEvent } from '../helpers/fixtures';
import { MemoryCluster, type Reply } from '../helpers/memory-cluster';

/**
 * The three kinds of target (lib/targets/), each through a test action that only reports what it was given: the
 * runner finds the target, reads it and runs the shared checks for its kind before run() sees it.
 */

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];
const POD_PATH = '/api/v1/namespaces/default/pods/kubecon';
const NODE_PATH = '/api/v1/nodes/worker-1';
const CONFIGMAP_PATH = '/api/v1/namespaces/default/configmaps/aws-creds';
const CLUSTERROLE_PATH = '/apis/rbac.authorization.k8s.io/v1/clusterroles/escalated';

/** Serves the fake API server from an in-memory cluster; every call is recorded as `METHOD path`. */
function serve(cluster: MemoryCluster): string[] {
  const calls: string[] = [];
  const scope = fakeApi().persist();
  for (const method of METHODS) {
    scope
      .intercept(() => true, method)
      .optionally()
      .reply((uri, body): Reply => {
        calls.push(`${method} ${uri}`);
        return cluster.answer(method, uri, body);
      });
  }
  return calls;
}

const nodeObject = (name: string, extra: { labels?: Record<string, string> } = {}) => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name, uid: `uid-${name}`, resourceVersion: '7', labels: extra.labels ?? { 'kubernetes.io/hostname': name } },
  spec: {},
});

const configMapObject = (namespace: string, name: string, labels: Record<string, string> = {}) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace, uid: `uid-${name}`, resourceVersion: '9', labels },
  data: { key: 'value' },
});

const scheduledPod = (nodeName: unknown) => ({ ...podObject('default', 'kubecon'), spec: { containers: [], nodeName } });

type AnyAction = Action<ParamSpecs, 'pod'> | Action<ParamSpecs, 'node'> | Action<ParamSpecs, 'audit-object'>;

/** What each test action saw of its target, in a form an assertion compares. */
const seen: unknown[] = [];

/** A test action on `kind` that records what it was handed and reports the target as touched, unchanged. */
function reporter<K extends TargetKind>(target: TargetSpec<K>, extra: { resources?: string[] } = {}): Action<ParamSpecs, K> {
  return defineAction(target, {
    name: `report-${target.kind}`,
    description: `reports the ${target.kind} it was given`,
    guardDefaults: { rules: '*' },
    parameters: {},
    permissions: [],
    ...extra,
    run({ target: found }: ActionContext<ParamSpecs, K>): Promise<ActionResult> {
      seen.push(found);
      const { kind, metadata } = found.found as { kind?: string; metadata?: { name?: string; namespace?: string } };
      return Promise.resolve({
        status: 'done',
        message: `saw ${metadata?.name ?? '?'}`,
        touched: [{ kind: kind ?? '?', ...(metadata?.namespace === undefined ? {} : { namespace: metadata.namespace }), name: metadata?.name ?? '?', changed: false }],
      });
    },
  });
}

async function handle<K extends TargetKind>(action: Action<ParamSpecs, K>, data: unknown, env: Record<string, string> = {}) {
  const log = memoryLogger();
  const handler = actionHandler(action, { env, kube: testKube(), log, ownNamespace: 'falco-response' });
  const { event, response } = kubelessEvent(data);
  const answer = await handler(event, kubelessContext());
  return { answer, status: response.statusCode, log: log.lines };
}

function auditAlert(fields: Record<string, unknown>) {
  const a = alert('terminal-shell');
  a.source = 'k8s_audit';
  a.output_fields = fields;
  return a;
}

const configMapAlert = (extra: Record<string, unknown> = {}) =>
  auditAlert({ 'ka.target.resource': 'configmaps', 'ka.target.namespace': 'default', 'ka.target.name': 'aws-creds', 'ka.verb': 'create', ...extra });

describe('targets: what an action acts on (lib/targets/)', () => {
  beforeEach(() => {
    seen.length = 0;
  });

  describe('declared: permissions, sources and fields follow the kind', () => {
    const cases: [string, AnyAction, object][] = [
      [
        'pod',
        reporter(POD_TARGET),
        {
          kind: 'pod-action',
          sources: ['syscall', 'k8s_audit'],
          requiredFields: ['container.id', 'k8s.ns.name', 'k8s.pod.name', 'ka.target.resource', 'ka.target.namespace', 'ka.target.name'],
          permissions: [{ apiGroup: '', resource: 'pods', verbs: ['get'] }],
        },
      ],
      [
        'node',
        reporter(NODE_TARGET),
        {
          kind: 'node-action',
          sources: ['syscall', 'k8s_audit'],
          requiredFields: ['container.id', 'k8s.ns.name', 'k8s.pod.name', 'ka.target.resource', 'ka.target.namespace', 'ka.target.name'],
          permissions: [
            { apiGroup: '', resource: 'nodes', verbs: ['get'] },
            { apiGroup: '', resource: 'pods', verbs: ['get'] },
          ],
        },
      ],
      [
        'audit-object',
        reporter(AUDIT_OBJECT_TARGET, { resources: ['configmaps', 'clusterroles'] }),
        {
          kind: 'audit-object-action',
          sources: ['k8s_audit'],
          requiredFields: ['ka.target.resource', 'ka.target.subresource', 'ka.target.namespace', 'ka.target.name', 'ka.resp.name'],
          permissions: [
            { apiGroup: '', resource: 'configmaps', verbs: ['get'] },
            { apiGroup: 'rbac.authorization.k8s.io', resource: 'clusterroles', verbs: ['get'] },
          ],
        },
      ],
    ];
    for (const [kind, action, expected] of cases) {
      it(kind, () => {
        const { kind: k, sources, requiredFields, permissions } = action;
        assert.deepEqual({ kind: k, sources, requiredFields, permissions }, expected);
        assert.deepEqual(
          action.checks.map((c) => c.name),
          ['test-event', 'rules', 'minimum-priority', 'source', 'target', 'protected-namespace', 'exists', 'opted-out'],
        );
      });
    }

    it('refuses, when the action is defined, resources a kind cannot take and sources that never name it', () => {
      const define = <K extends TargetKind>(target: TargetSpec<K>, extra: object) => () =>
        defineAction(target, { name: 'x', description: 'x', guardDefaults: { rules: '*' }, parameters: {}, permissions: [], run: () => Promise.reject(new Error('unused')), ...extra });
      assert.throws(define(AUDIT_OBJECT_TARGET, {}), { message: 'the action x: resources: an audit-object action names the resources it acts on' });
      assert.throws(define(AUDIT_OBJECT_TARGET, { resources: ['widgets'] }), {
        message: /^the action x: resources: "widgets" is not one of pods, configmaps, secrets, /,
      });
      assert.throws(define(AUDIT_OBJECT_TARGET, { resources: ['configmaps'], sources: ['syscall'] }), {
        message: 'the action x: sources: a audit-object is never named by a syscall alert',
      });
      assert.throws(define(NODE_TARGET, { resources: ['configmaps'] }), { message: 'the action x: resources: only an audit-object action names resources' });
    });
  });

  describe('node: the node of the alert’s pod', () => {
    it('reads the pod, takes spec.nodeName, reads the node, and hands both to the action', async () => {
      // Given
      const cluster = new MemoryCluster();
      cluster.objects.set(POD_PATH, scheduledPod('worker-1'));
      cluster.objects.set(NODE_PATH, nodeObject('worker-1'));
      const calls = serve(cluster);

      // When
      const { answer, status, log } = await handle(reporter(NODE_TARGET), alert('terminal-shell'));

      // Then
      assert.deepEqual(calls, [`GET ${POD_PATH}`, `GET ${NODE_PATH}`]);
      assert.equal(status, 200);
      assert.deepEqual(answer, {
        status: 'done',
        action: 'report-node',
        target: { namespace: 'default', pod: 'kubecon', node: 'worker-1' },
        dryRun: false,
        message: 'saw worker-1',
        details: { touched: [{ kind: 'Node', name: 'worker-1', changed: false }], changed: false, eventRecorded: false },
      });
      assert.deepEqual(seen, [{ kind: 'node', pod: { namespace: 'default', name: 'kubecon' }, node: { name: 'worker-1' }, found: nodeObject('worker-1') }]);
      assert.deepEqual(log.find((l) => l.message === 'alert handled')?.target, { namespace: 'default', pod: 'kubecon', node: 'worker-1' });
    });

    const skips: [string, (cluster: MemoryCluster) => void, object, string[]][] = [
      [
        'a pod not scheduled yet: no-node',
        (c) => c.objects.set(POD_PATH, scheduledPod(undefined)),
        {
          code: 'no-node',
          reason: "the pod 'kubecon' in the namespace 'default' is not scheduled on a node yet (spec.nodeName is empty)",
          target: { namespace: 'default', pod: 'kubecon' },
        },
        [`GET ${POD_PATH}`],
      ],
      [
        'a pod gone: pod-gone, as for pod actions',
        () => undefined,
        {
          code: 'pod-gone',
          reason: "the pod 'kubecon' in the namespace 'default' is already gone",
          target: { namespace: 'default', pod: 'kubecon' },
        },
        [`GET ${POD_PATH}`],
      ],
      [
        'a node gone: node-gone',
        (c) => c.objects.set(POD_PATH, scheduledPod('worker-1')),
        {
          code: 'node-gone',
          reason: "the node 'worker-1' of the pod 'kubecon' in the namespace 'default' is already gone",
          target: { namespace: 'default', pod: 'kubecon', node: 'worker-1' },
        },
        [`GET ${POD_PATH}`, `GET ${NODE_PATH}`],
      ],
      [
        'a node that opted out: opted-out, naming the node',
        (c) => {
          c.objects.set(POD_PATH, scheduledPod('worker-1'));
          c.objects.set(NODE_PATH, nodeObject('worker-1', { labels: { 'falco-response.io/ignore': 'true' } }));
        },
        {
          code: 'opted-out',
          reason: "the node 'worker-1' opted out with falco-response.io/ignore=true",
          target: { namespace: 'default', pod: 'kubecon', node: 'worker-1' },
        },
        [`GET ${POD_PATH}`, `GET ${NODE_PATH}`],
      ],
    ];
    for (const [name, given, expected, expectedCalls] of skips) {
      it(`skips ${name}`, async () => {
        const cluster = new MemoryCluster();
        given(cluster);
        const calls = serve(cluster);
        const { answer, status } = await handle(reporter(NODE_TARGET), alert('terminal-shell'));
        assert.deepEqual([status, answer, calls], [200, { status: 'skipped', ...expected }, expectedCalls]);
        assert.deepEqual(seen, []);
      });
    }

    it('skips a protected namespace before reading anything, naming the node of the pod', async () => {
      const a = alert('terminal-shell');
      a.output_fields['k8s.ns.name'] = 'kube-system';
      const { answer } = await handle(reporter(NODE_TARGET), a);
      assert.deepEqual(answer, {
        status: 'skipped',
        code: 'protected-namespace',
        reason: "the namespace 'kube-system' is protected (PROTECTED_NAMESPACES): the node of the pod 'kubecon' is left alone",
        target: { namespace: 'kube-system', pod: 'kubecon' },
      });
    });

    it('fails, and reads no node, when the pod names a node that is no node name (a broken proxy answers anything)', async () => {
      const cluster = new MemoryCluster();
      cluster.objects.set(POD_PATH, scheduledPod('../../secrets'));
      const calls = serve(cluster);
      const { answer, status } = await handle(reporter(NODE_TARGET), alert('terminal-shell'));
      assert.deepEqual(calls, [`GET ${POD_PATH}`]);
      assert.equal(status, 500);
      assert.deepEqual(answer, {
        status: 'failed',
        error:
          "get the pod 'kubecon' in the namespace 'default' failed: the API server's answer is not that pod (spec.nodeName: expected a node name, got \"../../secrets\")",
        target: { namespace: 'default', pod: 'kubecon' },
      });
    });

    it('fails when the node read is another node', async () => {
      const cluster = new MemoryCluster();
      cluster.objects.set(POD_PATH, scheduledPod('worker-1'));
      cluster.objects.set(NODE_PATH, nodeObject('worker-2'));
      serve(cluster);
      const { answer } = await handle(reporter(NODE_TARGET), alert('terminal-shell'));
      assert.deepEqual(answer, {
        status: 'failed',
        error: `get the node 'worker-1' failed: the API server's answer is not that node (metadata.name: expected "worker-1", got "worker-2")`,
        target: { namespace: 'default', pod: 'kubecon' },
      });
    });
  });

  describe('audit-object: the object a k8s_audit alert names', () => {
    const configMaps = () => reporter(AUDIT_OBJECT_TARGET, { resources: ['configmaps', 'clusterroles'] });

    it('reads the object ka.target.resource, ka.target.namespace and ka.target.name name', async () => {
      const cluster = new MemoryCluster();
      cluster.objects.set(CONFIGMAP_PATH, configMapObject('default', 'aws-creds'));
      const calls = serve(cluster);
      const { answer, status } = await handle(configMaps(), configMapAlert());
      assert.deepEqual(calls, [`GET ${CONFIGMAP_PATH}`]);
      assert.equal(status, 200);
      assert.deepEqual(answer, {
        status: 'done',
        action: 'report-audit-object',
        target: { resource: 'configmaps', namespace: 'default', name: 'aws-creds' },
        dryRun: false,
        message: 'saw aws-creds',
        details: { touched: [{ kind: 'ConfigMap', namespace: 'default', name: 'aws-creds', changed: false }], changed: false, eventRecorded: false },
      });
    });

    it('takes ka.resp.name on a create, whose ka.target.name is empty until the API server named the object', async () => {
      const cluster = new MemoryCluster();
      cluster.objects.set(CONFIGMAP_PATH, configMapObject('default', 'aws-creds'));
      const calls = serve(cluster);
      const { answer } = await handle(configMaps(), configMapAlert({ 'ka.target.name': '', 'ka.resp.name': 'aws-creds' }));
      assert.deepEqual([answer.status, calls], ['done', [`GET ${CONFIGMAP_PATH}`]]);
    });

    it('reads a cluster-wide object without a namespace, and no protected namespace applies to it', async () => {
      const cluster = new MemoryCluster();
      const role = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'escalated', uid: 'uid-escalated' }, rules: [] };
      cluster.objects.set(CLUSTERROLE_PATH, role);
      const calls = serve(cluster);
      const { answer } = await handle(configMaps(), auditAlert({ 'ka.target.resource': 'clusterroles', 'ka.target.namespace': 'kube-system', 'ka.target.name': 'escalated' }));
      assert.deepEqual(calls, [`GET ${CLUSTERROLE_PATH}`]);
      assert.deepEqual([answer.status, answer.target], ['done', { resource: 'clusterroles', name: 'escalated' }]);
      assert.deepEqual(seen, [{ kind: 'audit-object', object: { resource: AUDIT_OBJECT_TARGET_RESOURCE('clusterroles'), name: 'escalated' }, found: role }]);
    });

    const skips: [string, unknown, object][] = [
      [
        'a syscall alert: source-not-accepted',
        alert('terminal-shell'),
        { code: 'source-not-accepted', reason: 'the alert\'s source is "syscall" (syscall): this action takes k8s_audit alerts only' },
      ],
      [
        'a resource it does not act on: no-object',
        auditAlert({ 'ka.target.resource': 'secrets', 'ka.target.namespace': 'default', 'ka.target.name': 'token' }),
        { code: 'no-object', reason: 'the audit event is about "secrets" (ka.target.resource), not one of the resources this action acts on (configmaps, clusterroles)' },
      ],
      [
        'an audit event without ka.target.resource: no-object',
        auditAlert({ 'ka.target.namespace': 'default', 'ka.target.name': 'x' }),
        { code: 'no-object', reason: 'the audit event is about null (ka.target.resource), not one of the resources this action acts on (configmaps, clusterroles)' },
      ],
      [
        'a subresource (pods/exec is about the pod, not an object): no-object',
        configMapAlert({ 'ka.target.subresource': 'status' }),
        { code: 'no-object', reason: 'the audit event is about the subresource "status" of configmaps (ka.target.subresource), not an object itself' },
      ],
      [
        'an object without a name or a namespace: no-object, naming the fields',
        configMapAlert({ 'ka.target.name': null, 'ka.target.namespace': '' }),
        { code: 'no-object', reason: 'the audit event about configmaps names no object: ka.target.namespace and ka.target.name (or ka.resp.name) unknown' },
      ],
      [
        'a protected namespace, before reading: protected-namespace',
        configMapAlert({ 'ka.target.namespace': 'kube-system' }),
        {
          code: 'protected-namespace',
          reason: "the namespace 'kube-system' is protected (PROTECTED_NAMESPACES): the ConfigMap 'aws-creds' is left alone",
          target: { resource: 'configmaps', namespace: 'kube-system', name: 'aws-creds' },
        },
      ],
      [
        'an object gone: object-gone',
        configMapAlert(),
        {
          code: 'object-gone',
          reason: "the ConfigMap 'aws-creds' in the namespace 'default' is already gone",
          target: { resource: 'configmaps', namespace: 'default', name: 'aws-creds' },
        },
      ],
    ];
    for (const [name, data, expected] of skips) {
      it(`skips ${name}`, async () => {
        serve(new MemoryCluster());
        const { answer, status } = await handle(configMaps(), data);
        assert.deepEqual([status, answer], [200, { status: 'skipped', ...expected }]);
        assert.deepEqual(seen, []);
      });
    }

    it('skips an object that opted out, naming it', async () => {
      const cluster = new MemoryCluster();
      cluster.objects.set(CONFIGMAP_PATH, configMapObject('default', 'aws-creds', { 'falco-response.io/ignore': 'true' }));
      serve(cluster);
      const { answer } = await handle(configMaps(), configMapAlert());
      assert.deepEqual(answer, {
        status: 'skipped',
        code: 'opted-out',
        reason: "the ConfigMap 'aws-creds' in the namespace 'default' opted out with falco-response.io/ignore=true",
        target: { resource: 'configmaps', namespace: 'default', name: 'aws-creds' },
      });
    });

    it('refuses (400) a name that is not a Kubernetes name: it would end up in a URL', async () => {
      const { answer, status } = await handle(configMaps(), configMapAlert({ 'ka.target.name': '../secrets/x' }));
      assert.deepEqual([status, answer], [
        400,
        {
          status: 'invalid',
          error: `alert: output_fields["ka.target.name"]: expected an object name (lowercase letters, digits, '-' and '.', at most 253), got "../secrets/x"`,
        },
      ]);
    });

    it('fails when the answer is another kind of object', async () => {
      const cluster = new MemoryCluster();
      cluster.objects.set(CONFIGMAP_PATH, { ...configMapObject('default', 'aws-creds'), kind: 'Secret' });
      serve(cluster);
      const { answer } = await handle(configMaps(), configMapAlert());
      assert.deepEqual(answer, {
        status: 'failed',
        error: `get the ConfigMap 'aws-creds' in the namespace 'default' failed: the API server's answer is not that object (kind: expected "ConfigMap", got "Secret")`,
        target: { resource: 'configmaps', namespace: 'default', name: 'aws-creds' },
      });
    });
  });

  describe('pod: the fields it is found by are enforced', () => {
    it('skips a syscall alert that names a pod but no container (container.id absent), code no-pod, before any call', async () => {
      const a = alert('terminal-shell');
      delete a.output_fields['container.id'];
      const { answer } = await handle(reporter(POD_TARGET), a);
      nock.cleanAll();
      assert.deepEqual(answer, {
        status: 'skipped',
        code: 'no-pod',
        reason:
          "the alert does not say which container it is about (container.id is null, although k8s.ns.name and k8s.pod.name are set): the rule's output must include container.id",
      });
    });

    it('takes an audit event about a pod without container.id, as before', async () => {
      const cluster = new MemoryCluster().addPod('default', 'kubecon');
      const calls = serve(cluster);
      const { answer } = await handle(reporter(POD_TARGET), auditAlert({ 'ka.target.resource': 'pods', 'ka.target.namespace': 'default', 'ka.target.name': 'kubecon' }));
      assert.deepEqual([answer.status, calls], ['done', [`GET ${POD_PATH}`]]);
    });
  });
});

function AUDIT_OBJECT_TARGET_RESOURCE(resource: string) {
  return { resource, group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'ClusterRole', namespaced: false, names: 'segment' };
}

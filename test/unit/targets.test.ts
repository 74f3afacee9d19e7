import { strict as assert } from 'assert';
import { defineAction, type Action, type ActionContext, type ActionResult } from '../../lib/action';
import type { ParamSpecs } from '../../lib/params';
import type { TargetKind, TargetSpec } from '../../lib/resolve';
import { AUDIT_OBJECT_TARGET } from '../../lib/targets/audit-object';
import { NODE_TARGET } from '../../lib/targets/node';
import { POD_TARGET } from '../../lib/targets/pod';
import { alertHandled, runCase, TARGET, type ActionCase } from '../helpers/action-cases';
import { podObject } from '../helpers/fake-cluster';
import { alert } from '../helpers/fixtures';
import { MemoryCluster } from '../helpers/memory-cluster';

/**
 * The three kinds of target (lib/targets/), each through a test action that only reports what it was given: the
 * runner finds the target, reads it and runs the shared checks for its kind before run() sees it.
 */

const POD_PATH = '/api/v1/namespaces/default/pods/kubecon';
const NODE_PATH = '/api/v1/nodes/worker-1';
const CONFIGMAP_PATH = '/api/v1/namespaces/default/configmaps/aws-creds';
const CLUSTERROLE_PATH = '/apis/rbac.authorization.k8s.io/v1/clusterroles/escalated';

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

/** The resources as the audit-object target resolves them. */
const CLUSTERROLES = { resource: 'clusterroles', group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'ClusterRole', namespaced: false, names: 'segment' };
const CONFIGMAPS = { resource: 'configmaps', group: '', version: 'v1', kind: 'ConfigMap', namespaced: true, names: 'subdomain' };

const inNamespace = (namespace: string) => {
  const a = alert('terminal-shell');
  a.output_fields['k8s.ns.name'] = namespace;
  return a;
};

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

/** A case of a test action, and what its run() must have been handed: nothing unless given. */
type TargetCase = ActionCase & { readonly seen?: readonly unknown[] };

function targetCases<K extends TargetKind>(action: () => Action<ParamSpecs, K>, table: readonly TargetCase[]): void {
  for (const c of table) {
    it(c.title, async () => {
      await runCase(action(), c);
      assert.deepEqual(seen, c.seen ?? []);
    });
  }
}

/** A cluster holding these objects under their paths. */
const holding = (objects: Record<string, unknown>) => () => {
  const cluster = new MemoryCluster();
  for (const [path, object] of Object.entries(objects)) cluster.objects.set(path, object as Record<string, unknown>);
  return cluster;
};

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
    const POD_TARGET_NODE = { namespace: 'default', pod: 'kubecon', node: 'worker-1' };
    targetCases(() => reporter(NODE_TARGET), [
      {
        title: 'reads the pod, takes spec.nodeName, reads the node, and hands both to the action',
        cluster: holding({ [POD_PATH]: scheduledPod('worker-1'), [NODE_PATH]: nodeObject('worker-1') }),
        calls: [`GET ${POD_PATH}`, `GET ${NODE_PATH}`],
        answer: {
          status: 'done',
          action: 'report-node',
          target: POD_TARGET_NODE,
          dryRun: false,
          message: 'saw worker-1',
          details: { touched: [{ kind: 'Node', name: 'worker-1', changed: false }], changed: false, eventRecorded: false },
        },
        log: [
          alertHandled('info', { outcome: 'done', result: 'saw worker-1', dryRun: false }, POD_TARGET_NODE),
        ],
        seen: [{ kind: 'node', pod: { namespace: 'default', name: 'kubecon' }, node: { name: 'worker-1' }, found: nodeObject('worker-1'), podUid: 'uid-kubecon' }],
      },
      {
        title: 'skips a pod not scheduled yet: no-node',
        cluster: holding({ [POD_PATH]: scheduledPod(undefined) }),
        calls: [`GET ${POD_PATH}`],
        answer: {
          status: 'skipped',
          code: 'no-node',
          reason: "the pod 'kubecon' in the namespace 'default' is not scheduled on a node yet (spec.nodeName is empty)",
          target: TARGET,
        },
      },
      {
        title: 'skips a pod gone: pod-gone, as for pod actions',
        cluster: holding({}),
        calls: [`GET ${POD_PATH}`],
        answer: { status: 'skipped', code: 'pod-gone', reason: "the pod 'kubecon' in the namespace 'default' is already gone", target: TARGET },
      },
      {
        title: 'skips a node gone: node-gone',
        cluster: holding({ [POD_PATH]: scheduledPod('worker-1') }),
        calls: [`GET ${POD_PATH}`, `GET ${NODE_PATH}`],
        answer: {
          status: 'skipped',
          code: 'node-gone',
          reason: "the node 'worker-1' of the pod 'kubecon' in the namespace 'default' is already gone",
          target: POD_TARGET_NODE,
        },
      },
      {
        title: 'skips a node that opted out: opted-out, naming the node',
        cluster: holding({ [POD_PATH]: scheduledPod('worker-1'), [NODE_PATH]: nodeObject('worker-1', { labels: { 'falco-response.io/ignore': 'true' } }) }),
        calls: [`GET ${POD_PATH}`, `GET ${NODE_PATH}`],
        answer: { status: 'skipped', code: 'opted-out', reason: "the node 'worker-1' opted out with falco-response.io/ignore=true", target: POD_TARGET_NODE },
      },
      {
        title: 'skips a protected namespace before reading anything, naming the node of the pod',
        alert: inNamespace('kube-system'),
        cluster: holding({}),
        calls: [],
        answer: {
          status: 'skipped',
          code: 'protected-namespace',
          reason: "the namespace 'kube-system' is protected (PROTECTED_NAMESPACES): the node of the pod 'kubecon' is left alone",
          target: { namespace: 'kube-system', pod: 'kubecon' },
        },
      },
      {
        title: 'fails, and reads no node, when the pod names a node that is no node name (a broken proxy answers anything)',
        cluster: holding({ [POD_PATH]: scheduledPod('../../secrets') }),
        calls: [`GET ${POD_PATH}`],
        answer: {
          status: 'failed',
          error:
            "get the pod 'kubecon' in the namespace 'default' failed: the API server's answer is not that pod (spec.nodeName: expected a node name, got \"../../secrets\")",
          target: TARGET,
        },
      },
      {
        title: 'fails when the node read is another node',
        cluster: holding({ [POD_PATH]: scheduledPod('worker-1'), [NODE_PATH]: nodeObject('worker-2') }),
        calls: [`GET ${POD_PATH}`, `GET ${NODE_PATH}`],
        answer: {
          status: 'failed',
          error: `get the node 'worker-1' failed: the API server's answer is not that node (metadata.name: expected "worker-1", got "worker-2")`,
          target: TARGET,
        },
      },
    ]);
  });

  describe('audit-object: the object a k8s_audit alert names', () => {
    const configMaps = () => reporter(AUDIT_OBJECT_TARGET, { resources: ['configmaps', 'clusterroles'] });
    const CONFIGMAP_TARGET = { resource: 'configmaps', namespace: 'default', name: 'aws-creds' };
    const role = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'escalated', uid: 'uid-escalated', resourceVersion: '1' }, rules: [] };
    const sawConfigMap = {
      status: 'done',
      action: 'report-audit-object',
      target: CONFIGMAP_TARGET,
      dryRun: false,
      message: 'saw aws-creds',
      details: { touched: [{ kind: 'ConfigMap', namespace: 'default', name: 'aws-creds', changed: false }], changed: false, eventRecorded: false },
    };
    const seenConfigMap = [{ kind: 'audit-object', object: { resource: CONFIGMAPS, namespace: 'default', name: 'aws-creds' }, found: configMapObject('default', 'aws-creds') }];
    targetCases(configMaps, [
      {
        title: 'reads the object ka.target.resource, ka.target.namespace and ka.target.name name',
        alert: configMapAlert(),
        cluster: holding({ [CONFIGMAP_PATH]: configMapObject('default', 'aws-creds') }),
        calls: [`GET ${CONFIGMAP_PATH}`],
        answer: sawConfigMap,
        seen: seenConfigMap,
      },
      {
        title: 'takes ka.resp.name on a create, whose ka.target.name is empty until the API server named the object',
        alert: configMapAlert({ 'ka.target.name': '', 'ka.resp.name': 'aws-creds' }),
        cluster: holding({ [CONFIGMAP_PATH]: configMapObject('default', 'aws-creds') }),
        calls: [`GET ${CONFIGMAP_PATH}`],
        answer: sawConfigMap,
        seen: seenConfigMap,
      },
      {
        title: 'reads a cluster-wide object without a namespace, and no protected namespace applies to it',
        alert: auditAlert({ 'ka.target.resource': 'clusterroles', 'ka.target.namespace': 'kube-system', 'ka.target.name': 'escalated' }),
        cluster: holding({ [CLUSTERROLE_PATH]: role }),
        calls: [`GET ${CLUSTERROLE_PATH}`],
        answer: {
          status: 'done',
          action: 'report-audit-object',
          target: { resource: 'clusterroles', name: 'escalated' },
          dryRun: false,
          message: 'saw escalated',
          details: { touched: [{ kind: 'ClusterRole', name: 'escalated', changed: false }], changed: false, eventRecorded: false },
        },
        seen: [{ kind: 'audit-object', object: { resource: CLUSTERROLES, name: 'escalated' }, found: role }],
      },
      {
        title: 'skips a syscall alert: source-not-accepted',
        alert: alert('terminal-shell'),
        cluster: holding({}),
        calls: [],
        answer: { status: 'skipped', code: 'source-not-accepted', reason: 'the alert\'s source is "syscall" (syscall): this action takes k8s_audit alerts only' },
      },
      {
        title: 'skips a resource it does not act on: no-object',
        alert: auditAlert({ 'ka.target.resource': 'secrets', 'ka.target.namespace': 'default', 'ka.target.name': 'token' }),
        cluster: holding({}),
        calls: [],
        answer: {
          status: 'skipped',
          code: 'no-object',
          reason: 'the audit event is about "secrets" (ka.target.resource), not one of the resources this action acts on (configmaps, clusterroles)',
        },
      },
      {
        title: 'skips an audit event without ka.target.resource: no-object',
        alert: auditAlert({ 'ka.target.namespace': 'default', 'ka.target.name': 'x' }),
        cluster: holding({}),
        calls: [],
        answer: {
          status: 'skipped',
          code: 'no-object',
          reason: 'the audit event is about null (ka.target.resource), not one of the resources this action acts on (configmaps, clusterroles)',
        },
      },
      {
        title: 'skips a subresource (pods/exec is about the pod, not an object): no-object',
        alert: configMapAlert({ 'ka.target.subresource': 'status' }),
        cluster: holding({}),
        calls: [],
        answer: { status: 'skipped', code: 'no-object', reason: 'the audit event is about the subresource "status" of configmaps (ka.target.subresource), not an object itself' },
      },
      {
        title: 'skips an object without a name or a namespace: no-object, naming the fields',
        alert: configMapAlert({ 'ka.target.name': null, 'ka.target.namespace': '' }),
        cluster: holding({}),
        calls: [],
        answer: {
          status: 'skipped',
          code: 'no-object',
          reason: 'the audit event about configmaps names no object: ka.target.namespace and ka.target.name (or ka.resp.name) unknown',
        },
      },
      {
        title: 'skips a protected namespace, before reading: protected-namespace',
        alert: configMapAlert({ 'ka.target.namespace': 'kube-system' }),
        cluster: holding({}),
        calls: [],
        answer: {
          status: 'skipped',
          code: 'protected-namespace',
          reason: "the namespace 'kube-system' is protected (PROTECTED_NAMESPACES): the ConfigMap 'aws-creds' is left alone",
          target: { resource: 'configmaps', namespace: 'kube-system', name: 'aws-creds' },
        },
      },
      {
        title: 'skips an object gone: object-gone',
        alert: configMapAlert(),
        cluster: holding({}),
        calls: [`GET ${CONFIGMAP_PATH}`],
        answer: { status: 'skipped', code: 'object-gone', reason: "the ConfigMap 'aws-creds' in the namespace 'default' is already gone", target: CONFIGMAP_TARGET },
      },
      {
        title: 'skips an object that opted out, naming it',
        alert: configMapAlert(),
        cluster: holding({ [CONFIGMAP_PATH]: configMapObject('default', 'aws-creds', { 'falco-response.io/ignore': 'true' }) }),
        calls: [`GET ${CONFIGMAP_PATH}`],
        answer: {
          status: 'skipped',
          code: 'opted-out',
          reason: "the ConfigMap 'aws-creds' in the namespace 'default' opted out with falco-response.io/ignore=true",
          target: CONFIGMAP_TARGET,
        },
      },
      {
        title: 'refuses (400) a name that is not a Kubernetes name: it would end up in a URL',
        alert: configMapAlert({ 'ka.target.name': '../secrets/x' }),
        cluster: holding({}),
        calls: [],
        answer: {
          status: 'invalid',
          error: `alert: output_fields["ka.target.name"]: expected an object name (lowercase letters, digits, '-' and '.', at most 253), got "../secrets/x"`,
        },
      },
      {
        title: 'fails when the answer is another kind of object',
        alert: configMapAlert(),
        cluster: holding({ [CONFIGMAP_PATH]: { ...configMapObject('default', 'aws-creds'), kind: 'Secret' } }),
        calls: [`GET ${CONFIGMAP_PATH}`],
        answer: {
          status: 'failed',
          error: `get the ConfigMap 'aws-creds' in the namespace 'default' failed: the API server's answer is not that object (kind: expected "ConfigMap", got "Secret")`,
          target: CONFIGMAP_TARGET,
        },
      },
    ]);
  });

  describe('pod: the fields it is found by are enforced', () => {
    const noContainer = alert('terminal-shell');
    delete noContainer.output_fields['container.id'];
    targetCases(() => reporter(POD_TARGET), [
      {
        title: 'skips a syscall alert that names a pod but no container (container.id absent), code no-pod, before any call',
        alert: noContainer,
        calls: [],
        answer: {
          status: 'skipped',
          code: 'no-pod',
          reason:
            "the alert does not say which container it is about (container.id is null, although k8s.ns.name and k8s.pod.name are set): the rule's output must include container.id",
        },
      },
      {
        title: 'takes an audit event about a pod without container.id, as before',
        alert: auditAlert({ 'ka.target.resource': 'pods', 'ka.target.namespace': 'default', 'ka.target.name': 'kubecon' }),
        cluster: () => new MemoryCluster().addPod('default', 'kubecon'),
        calls: [`GET ${POD_PATH}`],
        answer: {
          status: 'done',
          action: 'report-pod',
          target: TARGET,
          dryRun: false,
          message: 'saw kubecon',
          details: { touched: [{ kind: 'Pod', namespace: 'default', name: 'kubecon', changed: false }], changed: false, eventRecorded: false },
        },
        seen: [{ kind: 'pod', pod: { namespace: 'default', name: 'kubecon' }, found: podObject('default', 'kubecon', { ownerKind: 'ReplicaSet' }) }],
      },
    ]);
  });
});


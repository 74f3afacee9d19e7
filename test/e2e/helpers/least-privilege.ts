/**
 * Least privilege, both ways, against the real RBAC authorizer: what a function's generated ClusterRole grants is
 * allowed to its ServiceAccount's token, and a set of calls outside it (reading Secrets, escalating, exec, deleting
 * or patching what it may not) is refused 403 when made with that same token.
 */
import { strict as assert } from 'assert';
import { api, apiOk, type ApiCall, type Cluster } from './cluster';
import { DEPLOY_NAMESPACE, ruleAllows, type Rule } from './deploy';

/** One API call made with a function's token, and the RBAC verb and resource it needs. */
export interface Probe {
  readonly verb: string;
  readonly group: string;
  readonly resource: string;
  readonly call: ApiCall;
}

/** Where the probes aim: a namespace and a pod the function could act on. */
export interface ProbeTarget {
  readonly namespace: string;
  readonly pod: string;
  /** A function's own ServiceAccount, for the token-minting probe. */
  readonly serviceAccount: string;
  /** A node the node probes aim at; by default a name no node has (RBAC answers 403 before any lookup). */
  readonly node?: string;
}

const pods = (ns: string) => `/api/v1/namespaces/${ns}/pods`;
const policies = (ns: string) => `/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies`;
const mergePatch = 'application/merge-patch+json';

/** Calls no action may make; the ones a function's role does grant are left out for that function. */
export function probes(target: ProbeTarget): Probe[] {
  const { namespace: ns, pod } = target;
  const podPath = `${pods(ns)}/${pod}`;
  const labels = { metadata: { labels: { 'e2e-probe': 'x' } } };
  const nodePath = `/api/v1/nodes/${target.node ?? 'e2e-probe-node'}`;
  return [
    { verb: 'list', group: '', resource: 'nodes', call: { method: 'GET', path: '/api/v1/nodes' } },
    { verb: 'delete', group: '', resource: 'nodes', call: { method: 'DELETE', path: nodePath } },
    { verb: 'update', group: '', resource: 'nodes', call: { method: 'PUT', path: nodePath, body: { apiVersion: 'v1', kind: 'Node', metadata: { name: target.node ?? 'e2e-probe-node' } } } },
    { verb: 'patch', group: '', resource: 'nodes/status', call: { method: 'PATCH', path: `${nodePath}/status`, body: labels, contentType: mergePatch } },
    { verb: 'create', group: '', resource: 'nodes', call: { method: 'POST', path: '/api/v1/nodes', body: { apiVersion: 'v1', kind: 'Node', metadata: { name: 'e2e-probe-node' } } } },
    { verb: 'list', group: '', resource: 'secrets', call: { method: 'GET', path: `/api/v1/namespaces/${ns}/secrets` } },
    { verb: 'get', group: '', resource: 'secrets', call: { method: 'GET', path: `/api/v1/namespaces/${DEPLOY_NAMESPACE}/secrets/e2e-probe` } },
    { verb: 'list', group: '', resource: 'secrets', call: { method: 'GET', path: '/api/v1/secrets' } },
    { verb: 'list', group: '', resource: 'configmaps', call: { method: 'GET', path: `/api/v1/namespaces/${ns}/configmaps` } },
    { verb: 'get', group: '', resource: 'pods', call: { method: 'GET', path: podPath } },
    { verb: 'list', group: '', resource: 'pods', call: { method: 'GET', path: pods(ns) } },
    { verb: 'list', group: '', resource: 'pods', call: { method: 'GET', path: '/api/v1/pods' } },
    { verb: 'watch', group: '', resource: 'pods', call: { method: 'GET', path: `${pods(ns)}?watch=1` } },
    { verb: 'patch', group: '', resource: 'pods', call: { method: 'PATCH', path: podPath, body: labels, contentType: mergePatch } },
    { verb: 'update', group: '', resource: 'pods', call: { method: 'PUT', path: podPath, body: { apiVersion: 'v1', kind: 'Pod', metadata: { name: pod } } } },
    { verb: 'delete', group: '', resource: 'pods', call: { method: 'DELETE', path: podPath } },
    { verb: 'deletecollection', group: '', resource: 'pods', call: { method: 'DELETE', path: pods(ns) } },
    {
      verb: 'create',
      group: '',
      resource: 'pods',
      call: { method: 'POST', path: pods(ns), body: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'e2e-probe' }, spec: { containers: [{ name: 'c', image: 'busybox:1.36' }] } } },
    },
    { verb: 'create', group: '', resource: 'pods/exec', call: { method: 'POST', path: `${podPath}/exec?command=sh&stdout=true` } },
    { verb: 'create', group: '', resource: 'pods/eviction', call: { method: 'POST', path: `${podPath}/eviction`, body: { apiVersion: 'policy/v1beta1', kind: 'Eviction', metadata: { name: pod } } } },
    { verb: 'deletecollection', group: '', resource: 'events', call: { method: 'DELETE', path: `/api/v1/namespaces/${ns}/events` } },
    { verb: 'list', group: '', resource: 'events', call: { method: 'GET', path: `/api/v1/namespaces/${ns}/events` } },
    { verb: 'get', group: 'networking.k8s.io', resource: 'networkpolicies', call: { method: 'GET', path: `${policies(ns)}/e2e-probe` } },
    { verb: 'list', group: 'networking.k8s.io', resource: 'networkpolicies', call: { method: 'GET', path: policies(ns) } },
    {
      verb: 'create',
      group: 'networking.k8s.io',
      resource: 'networkpolicies',
      call: { method: 'POST', path: policies(ns), body: { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'e2e-probe' }, spec: { podSelector: {} } } },
    },
    { verb: 'delete', group: 'networking.k8s.io', resource: 'networkpolicies', call: { method: 'DELETE', path: `${policies(ns)}/e2e-probe` } },
    { verb: 'patch', group: 'networking.k8s.io', resource: 'networkpolicies', call: { method: 'PATCH', path: `${policies(ns)}/e2e-probe`, body: labels, contentType: mergePatch } },
    {
      verb: 'create',
      group: '',
      resource: 'serviceaccounts/token',
      call: { method: 'POST', path: `/api/v1/namespaces/${DEPLOY_NAMESPACE}/serviceaccounts/${target.serviceAccount}/token`, body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: {} } },
    },
    {
      verb: 'create',
      group: 'rbac.authorization.k8s.io',
      resource: 'clusterrolebindings',
      call: {
        method: 'POST',
        path: '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
        body: {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'ClusterRoleBinding',
          metadata: { name: 'e2e-probe' },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
          subjects: [{ kind: 'ServiceAccount', name: target.serviceAccount, namespace: DEPLOY_NAMESPACE }],
        },
      },
    },
    {
      verb: 'patch',
      group: 'rbac.authorization.k8s.io',
      resource: 'clusterroles',
      call: { method: 'PATCH', path: `/apis/rbac.authorization.k8s.io/v1/clusterroles/falco-response-${target.serviceAccount}`, body: labels, contentType: mergePatch },
    },
    { verb: 'delete', group: '', resource: 'namespaces', call: { method: 'DELETE', path: `/api/v1/namespaces/${ns}` } },
    { verb: 'list', group: 'apps', resource: 'deployments', call: { method: 'GET', path: `/apis/apps/v1/namespaces/${ns}/deployments` } },
    { verb: 'list', group: 'kubeless.io', resource: 'functions', call: { method: 'GET', path: `/apis/kubeless.io/v1beta1/namespaces/${DEPLOY_NAMESPACE}/functions` } },
  ];
}

/** A running count of the API calls checked, for the report at the end of the suite. */
export const ledger = { allowed: 0, refused: 0 };

/**
 * Every (group, resource, verb) of the role is granted to the token: asked of the real authorizer with a
 * SelfSubjectAccessReview (what `kubectl auth can-i --token` sends), in the namespace the action works in.
 */
export async function assertRoleGranted(cluster: Cluster, token: string, rules: readonly Rule[], namespace: string): Promise<number> {
  let checked = 0;
  for (const rule of rules) {
    for (const group of rule.apiGroups) {
      for (const resource of rule.resources) {
        for (const verb of rule.verbs) {
          assert.equal(await canI(cluster, token, { verb, group, resource, namespace }), true, `the token may not ${verb} ${resource} in ${namespace}`);
          checked++;
        }
      }
    }
  }
  ledger.allowed += checked;
  return checked;
}

/** `kubectl auth can-i`: a SelfSubjectAccessReview made with the token itself. */
export async function canI(cluster: Cluster, token: string, ask: { verb: string; group: string; resource: string; namespace?: string; name?: string }): Promise<boolean> {
  const [resource, subresource] = ask.resource.split('/');
  const review = await apiOk(
    cluster,
    {
      method: 'POST',
      path: '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
      body: {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SelfSubjectAccessReview',
        spec: {
          resourceAttributes: {
            verb: ask.verb,
            group: ask.group,
            resource,
            ...(subresource === undefined ? {} : { subresource }),
            ...(ask.namespace === undefined ? {} : { namespace: ask.namespace }),
            ...(ask.name === undefined ? {} : { name: ask.name }),
          },
        },
      },
    },
    token,
  );
  return review.status.allowed === true;
}

/**
 * Makes every probe the role does not grant with the token, for real, and expects 403 Forbidden from each.
 * Returns the calls made.
 */
export async function assertRefusedOutsideRole(cluster: Cluster, token: string, rules: readonly Rule[], target: ProbeTarget): Promise<Probe[]> {
  const outside = probes(target).filter((p) => !ruleAllows(rules, p.group, p.resource, p.verb));
  const refused = await Promise.all(outside.map(async (probe) => ({ probe, answer: await api(cluster, probe.call, token) })));
  const notRefused = refused.filter((r) => r.answer.status !== 403);
  assert.deepEqual(
    notRefused.map((r) => `${r.probe.call.method} ${r.probe.call.path} answered ${r.answer.status}`),
    [],
    'calls outside the generated ClusterRole must be refused 403',
  );
  ledger.refused += outside.length;
  return outside;
}

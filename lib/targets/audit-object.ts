import { fieldAsString, knownField, type FalcoAlert } from '../alert';
import type { Skip } from '../checks';
import { describeValue, InvalidInputError } from '../decode';
import { describeObject, getObject, type ApiResource } from '../kube/objects';
import { namespaceName, objectName, segmentName } from '../names';
import type { RefOfKind, TargetSpec } from '../resolve';

const core = (resource: string, kind: string, namespaced = true): ApiResource => ({ resource, group: '', version: 'v1', kind, namespaced, names: 'subdomain' });
const grouped = (group: string, resource: string, kind: string, namespaced = true): ApiResource => ({ resource, group, version: 'v1', kind, namespaced, names: 'subdomain' });
/** RBAC's kinds take any path segment name (`system:controller:job-controller`), not only DNS names. */
const rbac = (resource: string, kind: string, namespaced = true): ApiResource => ({ ...grouped('rbac.authorization.k8s.io', resource, kind, namespaced), names: 'segment' });

/**
 * The resources an audit-object action can name, by `ka.target.resource`. An audit event carries no API group, so the
 * plural must name one resource only: these are the built-in ones Falco's audit rules watch, each served at v1.
 */
export const AUDIT_RESOURCES: ReadonlyMap<string, ApiResource> = new Map(
  [
    core('pods', 'Pod'),
    core('configmaps', 'ConfigMap'),
    core('secrets', 'Secret'),
    core('services', 'Service'),
    core('serviceaccounts', 'ServiceAccount'),
    core('namespaces', 'Namespace', false),
    core('nodes', 'Node', false),
    grouped('apps', 'deployments', 'Deployment'),
    grouped('apps', 'daemonsets', 'DaemonSet'),
    grouped('apps', 'statefulsets', 'StatefulSet'),
    grouped('apps', 'replicasets', 'ReplicaSet'),
    grouped('batch', 'jobs', 'Job'),
    grouped('batch', 'cronjobs', 'CronJob'),
    rbac('roles', 'Role'),
    rbac('rolebindings', 'RoleBinding'),
    rbac('clusterroles', 'ClusterRole', false),
    rbac('clusterrolebindings', 'ClusterRoleBinding', false),
    grouped('networking.k8s.io', 'networkpolicies', 'NetworkPolicy'),
  ].map((r) => [r.resource, r]),
);

/**
 * The object of an audit alert: `ka.target.resource` (one of the action's `resources`), `ka.target.namespace` for a
 * namespaced one, `ka.target.name` (or, on a create, `ka.resp.name`: the name is empty until the API server gave
 * it), and no `ka.target.subresource` (an exec or a log read is about its pod, not an object to act on).
 */
export function auditObjectOf(alert: FalcoAlert, accepted: readonly string[]): RefOfKind<'audit-object'> | Skip {
  const resourceName = fieldAsString(alert, 'ka.target.resource');
  const resource = resourceName === undefined || !accepted.includes(resourceName) ? undefined : AUDIT_RESOURCES.get(resourceName);
  if (resource === undefined) {
    return {
      code: 'no-object',
      reason: `the audit event is about ${describeValue(resourceName ?? null)} (ka.target.resource), not one of the resources this action acts on (${accepted.join(', ')})`,
    };
  }
  const subresource = knownField(alert, ['ka.target.subresource']);
  if (subresource !== undefined) {
    return {
      code: 'no-object',
      reason: `the audit event is about the subresource ${describeValue(subresource.value)} of ${resource.resource} (ka.target.subresource), not an object itself`,
    };
  }
  const name = knownField(alert, ['ka.target.name', 'ka.resp.name']);
  const namespace = resource.namespaced ? knownField(alert, ['ka.target.namespace']) : undefined;
  if (name === undefined || (resource.namespaced && namespace === undefined)) {
    const missing = [...(resource.namespaced && namespace === undefined ? ['ka.target.namespace'] : []), ...(name === undefined ? ['ka.target.name (or ka.resp.name)'] : [])];
    return { code: 'no-object', reason: `the audit event about ${resource.resource} names no object: ${missing.join(' and ')} unknown` };
  }
  const problems: string[] = [];
  const checkedNamespace = namespace === undefined ? undefined : namespaceName(namespace.value);
  const checkedName = resource.names === 'segment' ? segmentName(name.value) : objectName(name.value);
  if (namespace !== undefined && checkedNamespace === undefined) {
    problems.push(
      `alert: output_fields["${namespace.field}"]: expected a namespace name (lowercase letters, digits and '-', at most 63), got ${describeValue(namespace.value)}`,
    );
  }
  if (checkedName === undefined) {
    const expected =
      resource.names === 'segment'
        ? `a ${resource.kind} name (printable ASCII without '/' or '%', not '.' or '..', at most 253)`
        : "an object name (lowercase letters, digits, '-' and '.', at most 253)";
    problems.push(`alert: output_fields["${name.field}"]: expected ${expected}, got ${describeValue(name.value)}`);
  }
  if (checkedName === undefined || problems.length > 0) throw new InvalidInputError(problems);
  return { kind: 'audit-object', object: { resource, ...(checkedNamespace === undefined ? {} : { namespace: checkedNamespace }), name: checkedName } };
}

/** The object a Kubernetes audit alert names: the runner reads it (get on each of the action's resources) for the guards and the action. */
export const AUDIT_OBJECT_TARGET: TargetSpec<'audit-object'> = {
  kind: 'audit-object',
  sources: ['k8s_audit'],
  requiredFields: { k8s_audit: ['ka.target.resource', 'ka.target.subresource', 'ka.target.namespace', 'ka.target.name', 'ka.resp.name'] },
  checks: {
    find: {
      name: 'target',
      description:
        'an audit event that names no object of the action\'s resources (a subresource such as `pods/exec` is not an object) is skipped, code `no-object`; a name that is not a valid Kubernetes name is refused (400).',
    },
    read: { name: 'exists', description: 'the object is read; one the API server does not have is skipped, code `object-gone`.' },
  },
  permissions: (resources) => resources.map((r) => ({ apiGroup: AUDIT_RESOURCES.get(r)?.group ?? '', resource: r, verbs: ['get'] })),
  resourceProblems: (resources) => {
    const unknown = resources.filter((r) => !AUDIT_RESOURCES.has(r));
    if (resources.length === 0) return ['resources: an audit-object action names the resources it acts on'];
    return unknown.length === 0 ? [] : [`resources: ${unknown.map((r) => describeValue(r)).join(', ')} is not one of ${[...AUDIT_RESOURCES.keys()].join(', ')}`];
  },
  refOf: auditObjectOf,
  // An audit event names its object by name only (no uid): an object created again could not be told apart.
  identityOf: () => undefined,
  async read(kube, ref, deadline) {
    const found = await getObject(kube, ref.object, deadline);
    if (found === undefined) return { skip: { code: 'object-gone', reason: `${describeObject(ref.object)} is already gone` }, ref };
    return { target: { kind: 'audit-object', object: ref.object, found } };
  },
};

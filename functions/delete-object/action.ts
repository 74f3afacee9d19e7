import { defineAction, type ActionCheckInput, type ActionRefCheckInput, type Permission } from '../../lib/action';
import { knownField, type FalcoAlert } from '../../lib/alert';
import type { Check } from '../../lib/checks';
import { describeValue, InvalidInputError } from '../../lib/decode';
import { deleteObject, describeObject, type ApiObject, type ApiObjectRef, type BindingSubject } from '../../lib/kube/objects';
import { commaList, param, textCodec } from '../../lib/params';
import { AUDIT_OBJECT_TARGET, AUDIT_RESOURCES } from '../../lib/targets/audit-object';

/**
 * What delete-object may ever delete: every resource an audit event can name (lib/targets/audit-object.ts) but
 * namespaces (deleting one deletes everything in it) and nodes (deleting a Node object contains nothing).
 */
export const DELETABLE_RESOURCES: readonly string[] = [...AUDIT_RESOURCES.keys()].filter((r) => r !== 'namespaces' && r !== 'nodes');

/** The default: what an attacker creates to stay (bindings, accounts) or to hand over credentials (secrets, configmaps). */
const DEFAULT_RESOURCES = 'rolebindings,clusterrolebindings,serviceaccounts,secrets,configmaps';

const resourcesText = textCodec<readonly string[]>(
  (s) => {
    const items = commaList(s);
    const bad = items.find((i) => !DELETABLE_RESOURCES.includes(i));
    const expected = `a comma-separated list of one or more of ${DELETABLE_RESOURCES.join(', ')}`;
    if (items.length === 0) return { expected };
    return bad === undefined ? { value: [...new Set(items)] } : { expected: `${expected} (${describeValue(bad)} is not one)` };
  },
  (items) => items.join(','),
);

const parameters = {
  resources: param(
    'RESOURCES',
    resourcesText,
    DEFAULT_RESOURCES,
    "the resources (`ka.target.resource`) whose objects it deletes, comma-separated; the generated ClusterRole grants get and delete on these only (rebuild after a change)",
  ),
};
type DeleteObjectParams = typeof parameters;

/**
 * Names the cluster cannot do without: Kubernetes' own (`system:*`), kubeadm's (`kubeadm:*`), the default roles and
 * the cluster-admin binding, every namespace's `default` ServiceAccount (its controller recreates it anyway), and the
 * functions' own ClusterRoles and bindings (`falco-response-*`, build/model.ts): an alert must not disarm the response.
 */
function criticalName(resource: string, name: string): string | undefined {
  if (name.startsWith('system:')) return "a name under 'system:' is Kubernetes' own";
  if (name.startsWith('kubeadm:')) return "a name under 'kubeadm:' is kubeadm's own";
  if ((resource === 'clusterroles' || resource === 'clusterrolebindings') && ['cluster-admin', 'admin', 'edit', 'view'].includes(name)) {
    return 'it is one of the default roles or their bindings';
  }
  if (resource === 'serviceaccounts' && name === 'default') return "every namespace's 'default' ServiceAccount is the one its pods run as";
  if ((resource === 'clusterroles' || resource === 'clusterrolebindings') && name.startsWith('falco-response-')) return "it is one of falco-response's own";
  return undefined;
}

/** The label the API server puts on the RBAC objects it makes at start (and makes again when they are gone). */
const BOOTSTRAP_LABEL = 'kubernetes.io/bootstrapping';

const clusterCritical: Check<ActionRefCheckInput<DeleteObjectParams, 'audit-object'>> = {
  name: 'cluster-critical',
  description:
    "an object of a cluster-critical name (`system:*`, `kubeadm:*`, the ClusterRoles and ClusterRoleBindings `cluster-admin`, `admin`, `edit`, `view` and the functions' own `falco-response-*`, a ServiceAccount `default`) is left alone before it is read, code `cluster-critical`.",
  check: ({ ref }) => {
    const why = criticalName(ref.object.resource.resource, ref.object.name);
    return why === undefined ? undefined : { code: 'cluster-critical', reason: `${describeObject(ref.object)} is left alone: ${why}` };
  },
};

const bootstrapped: Check<ActionCheckInput<DeleteObjectParams, 'audit-object'>> = {
  name: 'bootstrap-rbac',
  description: `an object labelled \`${BOOTSTRAP_LABEL}\` (the API server's own RBAC defaults, whatever their name) is left alone, code \`cluster-critical\`.`,
  check: ({ target }) => {
    const value = target.found.metadata.labels?.[BOOTSTRAP_LABEL];
    return value === undefined ? undefined : { code: 'cluster-critical', reason: `${describeObject(target.object)} is left alone: it is labelled ${BOOTSTRAP_LABEL}=${describeValue(value)}` };
  },
};

/**
 * The users and groups that stand for everyone, anyone or every account of the cluster: what an attacker binds a role
 * to for a backdoor (`system:anonymous` to cluster-admin), never what a component of the cluster runs as.
 */
const EVERYONE: readonly string[] = ['system:authenticated', 'system:unauthenticated', 'system:anonymous', 'system:serviceaccounts'];

/** A ServiceAccount as a user (`system:serviceaccount:<namespace>:<name>`) and a namespace's accounts as a group (`system:serviceaccounts:<namespace>`). */
const ACCOUNT_USER = 'system:serviceaccount:';
const ACCOUNTS_GROUP = 'system:serviceaccounts:';

/**
 * Why a subject's access must not be taken away by an alert, or undefined: a ServiceAccount of a protected namespace
 * (Falco, its sidekick, the functions themselves, the CNI in kube-system), by kind or by user or group name, or one of
 * Kubernetes' own `system:` users and groups (the controller manager, the scheduler, the nodes, `system:masters`).
 * Not the `system:` names that stand for everyone (EVERYONE) or for the accounts of an unprotected namespace: those
 * are what a backdoor binds, and deleting the binding is the response.
 */
function protectedSubject(subject: BindingSubject, bindingNamespace: string | undefined, isProtected: (namespace: string) => boolean): string | undefined {
  const { kind, name } = subject;
  if (kind === 'ServiceAccount') {
    // The API server requires a ServiceAccount subject's namespace; one without is read as the binding's, or kept.
    const namespace = subject.namespace ?? bindingNamespace;
    if (namespace === undefined) return `it binds the ServiceAccount ${describeValue(name)} of no namespace`;
    return isProtected(namespace) ? `it binds the ServiceAccount ${describeValue(name)} of the protected namespace ${describeValue(namespace)}` : undefined;
  }
  if ((kind !== 'User' && kind !== 'Group') || !name.startsWith('system:') || EVERYONE.includes(name)) return undefined;
  const accounts = kind === 'User' ? ACCOUNT_USER : ACCOUNTS_GROUP;
  if (name.startsWith(accounts)) {
    const rest = name.slice(accounts.length);
    const namespace = kind === 'User' ? rest.slice(0, Math.max(rest.indexOf(':'), 0)) : rest;
    return isProtected(namespace) ? `it binds the ${kind} ${describeValue(name)}, of the protected namespace ${describeValue(namespace)}` : undefined;
  }
  return `it binds the ${kind} ${describeValue(name)}, one of Kubernetes' own identities`;
}

const protectedSubjects: Check<ActionCheckInput<DeleteObjectParams, 'audit-object'>> = {
  name: 'protected-subject',
  description:
    "a RoleBinding or ClusterRoleBinding read that grants its role to a ServiceAccount of a protected namespace (`PROTECTED_NAMESPACES` or the function's own; also as the user `system:serviceaccount:<namespace>:<name>` or the group `system:serviceaccounts:<namespace>`) or to a `system:` user or group of Kubernetes' own (not `system:authenticated`, `system:unauthenticated`, `system:anonymous`, `system:serviceaccounts`, nor the accounts of an unprotected namespace: what a backdoor binds) is left alone, code `protected-subject`: an alert must not take away the access that keeps the cluster's components and its defenders running.",
  check: ({ target, isProtectedNamespace }) => {
    const { found } = target;
    for (const subject of found.subjects ?? []) {
      const why = protectedSubject(subject, found.metadata.namespace, isProtectedNamespace);
      if (why !== undefined) return { code: 'protected-subject', reason: `${describeObject(target.object)} is left alone: ${why}` };
    }
    return undefined;
  },
};

/**
 * How far ahead of the function's clock an audit event's time may be: the API server's clock (the k8saudit plugin
 * takes the event's `stageTimestamp`) and the pod's may differ, by milliseconds under NTP. A minute covers a badly kept
 * clock; an event later than that was never seen, and an alert that says so is forged or broken.
 * No lower bound on the age: audit events reach Falco within seconds from a webhook, but minutes late from
 * CloudWatch or a log platform (k8saudit-eks, k8saudit-ovh) or a file read again, and a forger picks any time it likes,
 * so a bound would refuse genuine alerts and stop no forged one. The shared secret is what keeps forgers out.
 */
export const CLOCK_SKEW_MS = 60_000;

const eventInFuture: Check<ActionRefCheckInput<DeleteObjectParams, 'audit-object'>> = {
  name: 'event-time',
  description: `an alert whose \`time\` is more than ${CLOCK_SKEW_MS / 1000} seconds ahead of the function's clock (the allowed clock skew) describes no event that happened: skipped before anything is read, code \`event-in-future\`.`,
  check: ({ alert, now }) => {
    const eventAt = toSecond(alert.time);
    if (eventAt === undefined || eventAt <= now + CLOCK_SKEW_MS) return undefined;
    return {
      code: 'event-in-future',
      reason: `the alert's time ${describeValue(alert.time)} is more than the ${CLOCK_SKEW_MS / 1000} seconds of clock skew allowed ahead of this function's clock: no audit event happened then, and nothing is deleted`,
    };
  },
};

/**
 * Where the object's uid is, when the rule's output names it: the k8saudit plugin has no uid field, the json plugin
 * (loaded with it) reads any field of the audit event: `uid=%json.value[/responseObject/metadata/uid]`.
 */
export const UID_FIELDS: readonly string[] = ['json.value[/responseObject/metadata/uid]', 'jevt.value[/responseObject/metadata/uid]'];

const UID = /^[A-Za-z0-9-]{1,128}$/;

/** The uid the audit event saw, or undefined when the alert carries none; a value that is no uid is refused (400). */
function eventUid(alert: FalcoAlert): string | undefined {
  const found = knownField(alert, UID_FIELDS);
  if (found === undefined) return undefined;
  if (!UID.test(found.value)) throw new InvalidInputError([`alert: output_fields["${found.field}"]: expected a uid (letters, digits and '-', at most 128), got ${describeValue(found.value)}`]);
  return found.value;
}

const RFC3339 = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/** Epoch milliseconds of an RFC 3339 time cut to the second (creationTimestamp has no finer part), or undefined. */
function toSecond(time: string): number | undefined {
  const match = RFC3339.exec(time);
  if (match === null) return undefined;
  const ms = Date.parse(`${match[1]}${match[2]}`);
  return Number.isFinite(ms) ? ms : undefined;
}

/** How the object read was told to be the one the event saw. */
type Identity = { readonly by: 'uid'; readonly uid: string } | { readonly by: 'creationTimestamp'; readonly uid: string; readonly created: string };

/** The object read is the one the event saw: the same uid, or (without one) created no later than the event. */
function identify(alert: FalcoAlert, found: ApiObject): Identity | { readonly other: string } {
  const uid = eventUid(alert);
  const live = found.metadata.uid;
  if (uid !== undefined) return uid === live ? { by: 'uid', uid } : { other: `the audit event saw uid ${uid}, the object now has uid ${live}` };
  const created = found.metadata.creationTimestamp;
  const createdAt = created === undefined ? undefined : toSecond(created);
  const eventAt = toSecond(alert.time);
  if (created === undefined || createdAt === undefined) return { other: 'the API server gave no creationTimestamp, so it cannot be told from another object' };
  if (eventAt === undefined) return { other: `the alert's time ${describeValue(alert.time)} is not RFC 3339, so the object cannot be told from another one` };
  if (createdAt > eventAt) return { other: `it was created at ${created}, after the audit event (${alert.time})` };
  return { by: 'creationTimestamp', uid: live, created };
}

/** Why a recreated object is left alone: the target check before the DELETE, which itself carries the uid. */
const sameObject: Check<ActionCheckInput<DeleteObjectParams, 'audit-object'>> = {
  name: 'same-object',
  description:
    "the object read must be the one the audit event saw: of the uid the alert carries in `json.value[/responseObject/metadata/uid]` (the json plugin's field; the k8saudit plugin has no uid field), else created no later than the event (`creationTimestamp`, to the second, against the alert's `time`); another one is left alone, code `object-gone`. A uid there that is no uid is refused (400). The DELETE carries the uid as its precondition: an object replaced in between is left alone too.",
  check: ({ alert, target }) => {
    const identity = identify(alert, target.found);
    return 'other' in identity ? otherObject(target.object, identity.other) : undefined;
  },
};

function otherObject(object: ApiObjectRef, why: string): { readonly code: 'object-gone'; readonly reason: string } {
  return { code: 'object-gone', reason: `${describeObject(object)} is not the object the audit event saw (${why}): it is left alone` };
}

/** Why one facts line says how the object was told to be the event's. */
const identityText = (identity: Identity) =>
  identity.by === 'uid' ? `uid ${identity.uid}, the audit event's` : `uid ${identity.uid}, created at ${identity.created}, no later than the audit event`;

const permissions = (params: { readonly resources: readonly string[] }): readonly Permission[] => [
  ...params.resources.map((r) => ({ apiGroup: AUDIT_RESOURCES.get(r)?.group ?? '', resource: r, verbs: ['delete'] })),
  { apiGroup: '', resource: 'events', verbs: ['create'] },
];

export default defineAction(AUDIT_OBJECT_TARGET, {
  name: 'delete-object',
  description:
    'Deletes the object a Kubernetes audit alert names (a RoleBinding, a ClusterRoleBinding, a ServiceAccount, a Secret, a ConfigMap an attacker created), of the resources RESOURCES lists only, and only the very object the audit event saw.',
  guardDefaults: { rules: 'Attach to cluster-admin Role,Create/Modify Configmap With Private Credentials' },
  resources: { all: DELETABLE_RESOURCES, configured: (params) => params.resources },
  parameters,
  permissions,
  // Anyone who reaches its port could otherwise have it delete any object of RESOURCES outside the protected
  // namespaces, with an alert written to name it: an alert proves nothing about itself.
  requiresSharedSecret: 'it deletes the object any alert names, and an alert can be written by anyone who reaches its port',
  refChecks: [eventInFuture, clusterCritical],
  checks: [bootstrapped, protectedSubjects, sameObject],
  async run({ alert, target, kube, deadline, dryRun }) {
    const { object, found } = target;
    // The same-object check said yes on this very object; told again here for the uid and the facts.
    const identity = identify(alert, found);
    if ('other' in identity) return { status: 'skipped', ...otherObject(object, identity.other) };
    const touched = [{ kind: object.resource.kind, ...(object.namespace === undefined ? {} : { namespace: object.namespace }), name: object.name, changed: true }];
    const facts = { sameObjectBy: identity.by, uid: identity.uid };
    if (dryRun) return { status: 'done', message: `would delete ${describeObject(object)} (${identityText(identity)})`, touched, facts };
    const deleted = await deleteObject(kube, object, { uid: identity.uid }, deadline);
    if (deleted.outcome === 'already-gone') return { status: 'skipped', code: 'object-gone', reason: `${describeObject(object)} is already deleted` };
    if (deleted.outcome === 'replaced') {
      return {
        status: 'skipped',
        code: 'object-gone',
        reason: `${describeObject(object)} was replaced by another object of the same name since it was read (uid ${identity.uid}): the new one is left alone`,
      };
    }
    const lost = deleted.answerLost ? '; the answer to an earlier attempt was lost, and the retry found it gone' : '';
    return {
      status: 'done',
      message: `deleted ${describeObject(object)} (${identityText(identity)}${lost})`,
      touched,
      audit: { reason: 'FalcoResponseDeleted', what: `deleted ${describeObject(object)}`, change: 'deleted' },
      facts,
    };
  },
});

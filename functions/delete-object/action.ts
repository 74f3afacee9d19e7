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
 * The control-plane components that run as a user of their own name (the kubeconfigs kubeadm writes them, the API
 * server's loopback client): their bindings keep the cluster running. A short fixed list, for every other `system:`
 * name is what a backdoor binds or needs no binding: `system:masters` bypasses RBAC (a binding grants it nothing),
 * `system:nodes` and `system:node:<name>` get their rights from the node authorizer and the bootstrap bindings (a
 * role bound to them hands it to anyone holding one kubelet's credential), `system:authenticated`,
 * `system:unauthenticated`, `system:anonymous`, `system:serviceaccounts` and `system:bootstrappers*` stand for
 * everyone, anyone or a bootstrap token. Kubernetes' own bindings to those are kept all the same: by their `system:`
 * names (cluster-critical) and the `kubernetes.io/bootstrapping` label (bootstrap-rbac), kubeadm's by `kubeadm:`.
 */
const CONTROL_PLANE_USERS: readonly string[] = ['system:kube-controller-manager', 'system:kube-scheduler', 'system:kube-proxy', 'system:apiserver'];

/** A ServiceAccount as a user (`system:serviceaccount:<namespace>:<name>`) and a namespace's accounts as a group (`system:serviceaccounts:<namespace>`). */
const ACCOUNT_USER = 'system:serviceaccount:';
const ACCOUNTS_GROUP = 'system:serviceaccounts:';

/**
 * The subject in words when its access must not be taken away by an alert, or undefined: a ServiceAccount of a
 * protected namespace (Falco, its sidekick, the functions themselves, the CNI in kube-system), by kind or by user or
 * group name, or a control-plane component's user (CONTROL_PLANE_USERS).
 */
function protectedSubject(subject: BindingSubject, bindingNamespace: string | undefined, isProtected: (namespace: string) => boolean): string | undefined {
  const { kind, name } = subject;
  if (kind === 'ServiceAccount') {
    // As the authorizer reads it: an empty namespace is none, and a subject without one is of the binding's namespace.
    const namespace = subject.namespace || bindingNamespace;
    if (namespace === undefined || namespace === '') return `the ServiceAccount ${describeValue(name)} of no namespace`;
    return isProtected(namespace) ? `the ServiceAccount ${describeValue(name)} of the protected namespace ${describeValue(namespace)}` : undefined;
  }
  if (kind === 'User' && CONTROL_PLANE_USERS.includes(name)) return `the User ${describeValue(name)}, one of Kubernetes' own identities`;
  const accounts = kind === 'User' ? ACCOUNT_USER : kind === 'Group' ? ACCOUNTS_GROUP : undefined;
  if (accounts === undefined || !name.startsWith(accounts)) return undefined;
  const rest = name.slice(accounts.length);
  const namespace = kind === 'User' ? rest.slice(0, Math.max(rest.indexOf(':'), 0)) : rest;
  return isProtected(namespace) ? `the ${kind} ${describeValue(name)}, of the protected namespace ${describeValue(namespace)}` : undefined;
}

/** How many protected subjects a message names, the rest counted: a binding may list thousands. */
const NAMED_SUBJECTS_MAX = 5;

function namedSubjects(described: readonly string[]): string {
  const named = described.slice(0, NAMED_SUBJECTS_MAX).join('; ');
  return described.length > NAMED_SUBJECTS_MAX ? `${named}; and ${described.length - NAMED_SUBJECTS_MAX} more` : named;
}

const subjectsCount = (count: number) => `${count} ${count === 1 ? 'is' : 'are'}`;

const protectedSubjects: Check<ActionCheckInput<DeleteObjectParams, 'audit-object'>> = {
  name: 'protected-subject',
  description:
    "a RoleBinding or ClusterRoleBinding read whose every subject is a ServiceAccount of a protected namespace (`PROTECTED_NAMESPACES` or the function's own; also as the user `system:serviceaccount:<namespace>:<name>` or the group `system:serviceaccounts:<namespace>`) or a control-plane component's user (`" +
    CONTROL_PLANE_USERS.join('`, `') +
    "`) is left alone, code `protected-subject`: an alert must not take away the access that keeps the cluster's components and its defenders running. No other `system:` name protects (`system:masters`, `system:nodes`, `system:anonymous`, `system:authenticated`, …: what a backdoor binds). A binding with protected subjects and others (a backdoor shielded by a defender's identity, or a defender's binding an attacker added to) is not deleted and answers `failed`, code `shielded-binding`, naming them, for a person to look at. The check reads bindings only: with `roles` or `clusterroles` in `RESOURCES`, a role a protected subject is bound to is deleted like any other (unless its name or label is Kubernetes' own).",
  check: ({ target, isProtectedNamespace }) => {
    const { found } = target;
    const subjects = found.subjects ?? [];
    const shielding = subjects.flatMap((subject) => protectedSubject(subject, found.metadata.namespace, isProtectedNamespace) ?? []);
    if (shielding.length === 0) return undefined;
    const object = describeObject(target.object);
    if (shielding.length === subjects.length) return { code: 'protected-subject', reason: `${object} is left alone: it binds ${namedSubjects(shielding)}` };
    return {
      failure: 'shielded-binding',
      error: `${object} is not deleted: of its ${subjects.length} subjects, ${subjectsCount(shielding.length)} protected (${namedSubjects(shielding)}) and ${subjectsCount(subjects.length - shielding.length)} not; a protected subject next to others may shield a backdoor, and deleting the binding would take the protected ones' access away too: look at it and remove the other subjects, or the binding, by hand`,
    };
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

const eventTime: Check<ActionRefCheckInput<DeleteObjectParams, 'audit-object'>> = {
  name: 'event-time',
  description: `an alert whose \`time\` is not an RFC 3339 time of fields in range (no leap second \`:60\`, no offset \`+24:00\`) is skipped before anything is read, code \`event-time-unreadable\` (a time that cannot be read cannot be checked); one more than ${CLOCK_SKEW_MS / 1000} seconds ahead of the function's clock (the allowed clock skew) describes no event that happened: skipped before anything is read, code \`event-in-future\`.`,
  check: ({ alert, now }) => {
    const eventAt = toSecond(alert.time);
    if (eventAt === undefined) {
      return {
        code: 'event-time-unreadable',
        reason: `the alert's time ${describeValue(alert.time)} is not an RFC 3339 time (such as 2026-11-26T10:00:01.5Z, every field in range): it cannot be checked, and nothing is deleted`,
      };
    }
    if (eventAt <= now + CLOCK_SKEW_MS) return undefined;
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

/** RFC 3339's date-time (section 5.6), its fields of fixed width: one anchored pass, linear in the text. */
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?(?:Z|([+-])(\d{2}):(\d{2}))$/;

const isLeapYear = (year: number) => year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
const daysIn = (year: number, month: number) => (month === 2 ? (isLeapYear(year) ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31);

/**
 * Epoch milliseconds of an RFC 3339 time cut to the second (creationTimestamp has no finer part), or undefined when
 * a field is out of range: a leap second (`:60`, which Date.parse does not read), an offset of `+24:00`, minute 60,
 * the 30th of February. Computed from the fields, not left to Date.parse, whose reading of odd text varies.
 */
function toSecond(time: string): number | undefined {
  const match = RFC3339.exec(time);
  if (match === null) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number);
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month) || hour > 23 || minute > 59 || second > 59) return undefined;
  const [sign, offsetHours, offsetMinutes] = [match[7], Number(match[8] ?? 0), Number(match[9] ?? 0)];
  if (offsetHours > 23 || offsetMinutes > 59) return undefined;
  const utc = new Date(0);
  utc.setUTCFullYear(year, month - 1, day); // not Date.UTC, which reads the years 0 to 99 as 1900 to 1999
  utc.setUTCHours(hour, minute, second, 0);
  return utc.getTime() - (sign === '-' ? -1 : 1) * (offsetHours * 60 + offsetMinutes) * 60_000;
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
    "the object read must be the one the audit event saw: of the uid the alert carries in `json.value[/responseObject/metadata/uid]` (the json plugin's field; the k8saudit plugin has no uid field), else created no later than the event (`creationTimestamp`, to the second, against the alert's `time`); another one is left alone, code `object-gone`. A uid there that is no uid is refused (400). The DELETE carries the uid and the resourceVersion read as its preconditions: an object replaced or changed since it was checked (a subject added to a binding) is not deleted, and answers `failed`, code `object-changed`.",
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
  refChecks: [eventTime, clusterCritical],
  checks: [bootstrapped, protectedSubjects, sameObject],
  async run({ alert, target, kube, deadline, dryRun }) {
    const { object, found } = target;
    // The same-object check said yes on this very object; told again here for the uid and the facts.
    const identity = identify(alert, found);
    if ('other' in identity) return { status: 'skipped', ...otherObject(object, identity.other) };
    const touched = [{ kind: object.resource.kind, ...(object.namespace === undefined ? {} : { namespace: object.namespace }), name: object.name, changed: true }];
    const facts = { sameObjectBy: identity.by, uid: identity.uid };
    if (dryRun) return { status: 'done', message: `would delete ${describeObject(object)} (${identityText(identity)})`, touched, facts };
    const deleted = await deleteObject(kube, object, { uid: identity.uid, resourceVersion: found.metadata.resourceVersion }, deadline);
    if (deleted.outcome === 'already-gone') return { status: 'skipped', code: 'object-gone', reason: `${describeObject(object)} is already deleted` };
    if (deleted.outcome === 'changed') {
      return {
        status: 'failed',
        code: 'object-changed',
        error: `${describeObject(object)} was not deleted: it changed, or another object took its name, since it was read and checked (uid ${identity.uid}, resourceVersion ${describeValue(found.metadata.resourceVersion)}), and the API server refused the DELETE (409); send the alert again to check it anew`,
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

import * as D from 'io-ts/Decoder';
import { decodedOrFail, isDeletedStatus, isNotFound, mismatch, readObject, stringMap, timeAnswer, uidAnswer } from './answers';
import type { Kube } from './client';
import { isApiStatus, isApiStatusAfterPossiblyAppliedAttempt, KubeAnswerError, type Operation } from './errors';
import { apiPath, type ApiPath } from './refs';
import { describeValue, list, literal, object, refined } from '../decode';
import type { NamespaceName, ObjectName, SegmentName } from '../names';

/** Where the API serves a kind of object, e.g. what a Kubernetes audit event's `ka.target.resource` names. */
export interface ApiResource {
  /** The plural, as audit events and RBAC name it: `configmaps`. */
  readonly resource: string;
  /** '' for the core group. */
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  readonly namespaced: boolean;
  /**
   * What its objects' names may be: a DNS-1123 subdomain (`subdomain`, most kinds), or any path segment name
   * (`segment`: RBAC's kinds, named `system:node` and the like; lib/names.ts segmentName).
   */
  readonly names: 'subdomain' | 'segment';
}

/** An object by resource, namespace (when the resource is namespaced) and name. */
export interface ApiObjectRef {
  readonly resource: ApiResource;
  readonly namespace?: NamespaceName;
  readonly name: ObjectName | SegmentName;
}

/** A name quoted as messages quote names, `'web'`; one with blanks or quotes (an RBAC name may hold them) as JSON text. */
const quotedName = (name: string) => (/^[A-Za-z0-9:._@+=-]+$/.test(name) ? `'${name}'` : describeValue(name));

/** The object in words: "the ConfigMap 'app-config' in the namespace 'prod'", "the ClusterRole 'admin'". */
export function describeObject(ref: ApiObjectRef): string {
  return `the ${ref.resource.kind} ${quotedName(ref.name)}${ref.namespace === undefined ? '' : ` in the namespace '${ref.namespace}'`}`;
}

function objectPath(ref: ApiObjectRef): ApiPath {
  const { group, version, resource } = ref.resource;
  const scope = ref.namespace === undefined ? '' : apiPath`/namespaces/${ref.namespace}`;
  const name = apiPath`/${ref.name}`;
  // The group, version and resource are our own literals (lib/targets/audit-object.ts AUDIT_RESOURCES), the names
  // checked ones: the one place a path is joined from more than apiPath's placeholders.
  return `${group === '' ? `/api/${version}` : `/apis/${group}/${version}`}${scope}/${resource}${name}` as ApiPath;
}

const objectOp = (verb: string, ref: ApiObjectRef): Operation => ({ verb, resource: ref.resource.resource, group: ref.resource.group, object: describeObject(ref) });

/** Who a RoleBinding or ClusterRoleBinding grants its role to: a User, a Group or a ServiceAccount (with its namespace). */
export interface BindingSubject {
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
}

/** What every object has that the guards read: its identity, labels and annotations; a binding's subjects. */
export interface ApiObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly uid: string;
    /** The version read: a DELETE carrying it is refused (409) if the object changed since. */
    readonly resourceVersion: string;
    /** RFC 3339 to the second, as the API server writes it. */
    readonly creationTimestamp?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
  };
  /** A RoleBinding's or ClusterRoleBinding's (none for other kinds; a binding may have none). */
  readonly subjects?: readonly BindingSubject[];
}

/** What the API server writes as a resourceVersion: an opaque string, never empty; bounded, for it is quoted in answers. */
const resourceVersionAnswer = refined(D.string, (s) => s.length > 0 && s.length <= 64, 'a resourceVersion (at most 64 characters)');

const bindingSubject = object({ kind: D.string, name: D.string }, { namespace: D.string, apiGroup: D.string }, 'a subject');

/** The kinds whose objects name subjects: the guards read them to tell whose access a deletion would remove. */
const BINDING_KINDS: readonly string[] = ['RoleBinding', 'ClusterRoleBinding'];

const objectAnswer = (ref: ApiObjectRef) =>
  object(
    {
      apiVersion: literal(ref.resource.group === '' ? ref.resource.version : `${ref.resource.group}/${ref.resource.version}`),
      kind: literal(ref.resource.kind),
      metadata: object({ name: D.string, uid: uidAnswer, resourceVersion: resourceVersionAnswer }, { namespace: D.string, creationTimestamp: timeAnswer, labels: stringMap, annotations: stringMap }),
    },
    // A binding's subjects decide whether it may go: a list that is not one fails the read rather than pass as none.
    BINDING_KINDS.includes(ref.resource.kind) ? { subjects: list(bindingSubject) } : {},
    `a ${ref.resource.kind}`,
  );

/** The object as the API server has it, or `undefined` when it does not exist; any other answer throws (readObject). */
export function getObject(kube: Kube, ref: ApiObjectRef, deadline: number): Promise<ApiObject | undefined> {
  return readObject(kube, { method: 'GET', path: objectPath(ref), op: objectOp('get', ref) }, objectAnswer(ref), 'that object', ref, deadline);
}

/**
 * What a DELETE of an object did: `deleted` (`answerLost`: an earlier attempt may have deleted it and its answer was
 * lost, so the retry found it gone), `already-gone` (someone else deleted it first), `changed` (a precondition failed:
 * the object was changed, or the name holds another one, since it was read; left alone).
 */
export type DeleteObjectResult =
  | { readonly outcome: 'deleted'; readonly answerLost: boolean }
  | { readonly outcome: 'already-gone' }
  | { readonly outcome: 'changed' };

/**
 * Deletes the object, but only as it was read: of `uid` and still at `resourceVersion` (`preconditions`: the API
 * server refuses with 409 when the name holds another object or the object changed, a subject added to a binding
 * after the checks read it). The answer is checked to be a Status of success or that object, as it was deleted
 * (a kind with finalizers answers the object, being deleted): anything else fails, saying whether it was deleted is
 * not known. `deleteObject(kube, ref, { uid, resourceVersion }, deadline)`.
 */
export async function deleteObject(
  kube: Kube,
  ref: ApiObjectRef,
  options: { readonly uid: string; readonly resourceVersion: string },
  deadline: number,
): Promise<DeleteObjectResult> {
  const op = objectOp('delete', ref);
  const body = { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid: options.uid, resourceVersion: options.resourceVersion } };
  let answer: unknown;
  try {
    answer = await kube.request<unknown>({ method: 'DELETE', path: objectPath(ref), op, body }, deadline);
  } catch (error) {
    // As for pods (lib/kube/pods.ts deletePod): a 404 to a retry of an attempt that may have been carried out reports
    // our own deletion; after a 429 or a refused connection, someone else's.
    if (isNotFound(error)) return isApiStatusAfterPossiblyAppliedAttempt(error, 404) ? { outcome: 'deleted', answerLost: true } : { outcome: 'already-gone' };
    if (isApiStatus(error, 409) && error.reason === 'Conflict') {
      // An earlier attempt may have begun the deletion (of a kind with finalizers), which changes the object itself.
      if (error.earlierAttemptMayHaveApplied) {
        throw new KubeAnswerError(op, 'a retry found the object changed since it was read, after an attempt whose answer was lost: whether it was deleted is not known');
      }
      return { outcome: 'changed' };
    }
    throw error;
  }
  if (!isDeletedStatus(answer)) {
    // A proxy that answers writes with anything would otherwise have us report a deletion that may never have happened.
    const fail = (problems: string) => new KubeAnswerError(op, `the API server's answer is not that object (${problems}): whether it was deleted is not known`);
    const { metadata } = decodedOrFail(objectAnswer(ref), answer, fail);
    const wrong = [
      ...mismatch('metadata.namespace', ref.namespace, metadata.namespace),
      ...mismatch('metadata.name', ref.name, metadata.name),
      ...mismatch('metadata.uid', options.uid, metadata.uid),
    ];
    if (wrong.length > 0) throw fail(wrong.join('; '));
  }
  return { outcome: 'deleted', answerLost: false };
}

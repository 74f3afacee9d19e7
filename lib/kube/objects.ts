import * as t from 'io-ts';
import { decodedOrFail, isNotFound, mismatch, stringMap } from './answers';
import type { Kube } from './client';
import { KubeAnswerError, type Operation } from './errors';
import { apiPath, type ApiPath } from './refs';
import type { NamespaceName, ObjectName } from '../names';

/** Where the API serves a kind of object, e.g. what a Kubernetes audit event's `ka.target.resource` names. */
export interface ApiResource {
  /** The plural, as audit events and RBAC name it: `configmaps`. */
  readonly resource: string;
  /** '' for the core group. */
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  readonly namespaced: boolean;
}

/** An object by resource, namespace (when the resource is namespaced) and name. */
export interface ApiObjectRef {
  readonly resource: ApiResource;
  readonly namespace?: NamespaceName;
  readonly name: ObjectName;
}

/** The object in words: "the ConfigMap 'app-config' in the namespace 'prod'", "the ClusterRole 'admin'". */
export function describeObject(ref: ApiObjectRef): string {
  return `the ${ref.resource.kind} '${ref.name}'${ref.namespace === undefined ? '' : ` in the namespace '${ref.namespace}'`}`;
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

/** What every object has that the guards read: its identity, labels and annotations. */
export interface ApiObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly uid: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
  };
}

const objectAnswer = (ref: ApiObjectRef) =>
  t.type(
    {
      apiVersion: t.literal(ref.resource.group === '' ? ref.resource.version : `${ref.resource.group}/${ref.resource.version}`),
      kind: t.literal(ref.resource.kind),
      metadata: t.intersection([
        t.type({ name: t.string, uid: t.refinement(t.string, (s) => /^[A-Za-z0-9-]{1,128}$/.test(s), "a uid (letters, digits and '-', at most 128)") }),
        t.partial({ namespace: t.string, labels: stringMap, annotations: stringMap }),
      ]),
    },
    `a ${ref.resource.kind}`,
  );

/**
 * Reads an object by its path: `undefined` when the API server says there is none (404 NotFound), else the answer,
 * decoded by `codec` and checked to name the object asked for (a broken proxy may answer anything), as sent.
 * lib/kube/answers.ts readObject does the same for namespaced objects; this one takes cluster-wide ones too.
 */
export async function readNamed<A extends { readonly metadata: { readonly name: string; readonly namespace?: string } }>(
  kube: Kube,
  op: Operation,
  path: ApiPath,
  codec: t.Decoder<unknown, A>,
  what: string,
  ref: { readonly namespace?: string; readonly name: string },
  deadline: number,
): Promise<A | undefined> {
  let answer: unknown;
  try {
    answer = await kube.request<unknown>({ method: 'GET', path, op }, deadline);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
  const fail = (problems: string) => new KubeAnswerError(op, `the API server's answer is not ${what} (${problems})`);
  const decoded = decodedOrFail(codec, answer, fail);
  const wrong = [...mismatch('metadata.namespace', ref.namespace, decoded.metadata.namespace), ...mismatch('metadata.name', ref.name, decoded.metadata.name)];
  if (wrong.length > 0) throw fail(wrong.join('; '));
  return decoded;
}

/** The object as the API server has it, or `undefined` when it does not exist; any other answer throws (readNamed). */
export function getObject(kube: Kube, ref: ApiObjectRef, deadline: number): Promise<ApiObject | undefined> {
  return readNamed(kube, objectOp('get', ref), objectPath(ref), objectAnswer(ref), 'that object', ref, deadline);
}

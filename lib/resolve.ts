import type { V1Node, V1Pod } from '@kubernetes/client-node';
import type { Permission } from './action';
import { isAuditAlert, type FalcoAlert } from './alert';
import type { DeclaredCheck, Skip } from './checks';
import { describeValue } from './decode';
import type { Kube } from './kube/client';
import { describeNode, type NodeRef } from './kube/nodes';
import { describeObject, type ApiObject, type ApiObjectRef } from './kube/objects';
import { describePod } from './kube/pods';
import type { PodRef } from './target';

/**
 * What an action acts on: `pod`, the alert's pod (lib/targets/pod.ts); `node`, the node that pod runs on
 * (lib/targets/node.ts); `audit-object`, the object a Kubernetes audit alert names (lib/targets/audit-object.ts).
 */
export type TargetKind = 'pod' | 'node' | 'audit-object';

/**
 * The alerts an action accepts by their source: `k8s_audit` (Falco's Kubernetes audit events, lib/alert.ts
 * AUDIT_SOURCES) or `syscall`, every other source (an old Falcosidekick sends none).
 */
export type AlertSource = 'syscall' | 'k8s_audit';

/** What an alert names, before anything is read: the node of a node target is known once its pod was read. */
export type TargetRef =
  | { readonly kind: 'pod'; readonly pod: PodRef }
  | { readonly kind: 'node'; readonly pod: PodRef; readonly node?: NodeRef }
  | { readonly kind: 'audit-object'; readonly object: ApiObjectRef };

/** The target as the API server had it when the checks ran. */
export type Target =
  | { readonly kind: 'pod'; readonly pod: PodRef; readonly found: V1Pod }
  | { readonly kind: 'node'; readonly pod: PodRef; readonly node: NodeRef; readonly found: V1Node; readonly podUid?: string | undefined }
  | { readonly kind: 'audit-object'; readonly object: ApiObjectRef; readonly found: ApiObject };

export type TargetOfKind<K extends TargetKind> = Extract<Target, { readonly kind: K }>;
export type RefOfKind<K extends TargetKind> = Extract<TargetRef, { readonly kind: K }>;

/** Reading a target: the target as read, or why it is not there (a skip), with the ref as far as it got. */
export type Reading<K extends TargetKind> = { readonly target: TargetOfKind<K> } | { readonly skip: Skip; readonly ref: TargetRef };

/**
 * A kind of target: which alerts name one and through which fields, how the runner finds it and reads it, and what
 * that needs. Each lives in lib/targets/, so that a function's bundle holds only its own kind's code.
 */
export interface TargetSpec<K extends TargetKind> {
  readonly kind: K;
  /** The sources whose alerts can name such a target; an action may take fewer. */
  readonly sources: readonly AlertSource[];
  /** The Falco fields it is found by, for each source (docs/functions.md lists them). */
  readonly requiredFields: Readonly<Partial<Record<AlertSource, readonly string[]>>>;
  /** How finding it (`target`, before the protected-namespace check) and reading it (`exists`) can skip, for the docs. */
  readonly checks: { readonly find: DeclaredCheck; readonly read: DeclaredCheck };
  /** What the runner needs to read it, given an audit-object action's resources. */
  permissions(resources: readonly string[]): readonly Permission[];
  /** The problems of an action's declared resources, checked when the action is defined. */
  resourceProblems(resources: readonly string[]): readonly string[];
  /**
   * What the alert names, or why it names nothing such (a skip). A name that is present but not a valid Kubernetes
   * name throws InvalidInputError: it would otherwise end up in a URL.
   */
  refOf(alert: FalcoAlert, resources: readonly string[]): RefOfKind<K> | Skip;
  /** Reads what the ref names: the API server's 404 is a skip (the target is gone), any other failure throws. */
  read(kube: Kube, ref: RefOfKind<K>, deadline: number): Promise<Reading<K>>;
  /**
   * What tells the target apart from another by the same name (a pod deleted and created again), known from the
   * alert alone: the runner answers an alike alert from memory only for the same identity (lib/runner.ts). Undefined
   * when the alert carries none: such alerts are never answered from memory.
   */
  identityOf(alert: FalcoAlert): string | undefined;
}

/** The source an alert comes from, as actions declare the sources they take. */
export const sourceOf = (alert: FalcoAlert): AlertSource => (isAuditAlert(alert) ? 'k8s_audit' : 'syscall');

/** The skip for an alert of a source the action does not take, or undefined. */
export function sourceSkip(sources: readonly AlertSource[], alert: FalcoAlert): Skip | undefined {
  const source = sourceOf(alert);
  if (sources.includes(source)) return undefined;
  return {
    code: 'source-not-accepted',
    reason: `the alert's source is ${describeValue(alert.source ?? null)} (${source}): this action takes ${sources.join(' and ')} alerts only`,
  };
}

/**
 * What names a target, without the object read: what the answer, the log line and a remembered answer keep (a pod as
 * read may weigh up to an object's 1.5 MiB; lib/repeats.ts keeps answers by their weight).
 */
export function refOfTarget(target: Target): TargetRef {
  if (target.kind === 'pod') return { kind: 'pod', pod: target.pod };
  if (target.kind === 'node') return { kind: 'node', pod: target.pod, node: target.node };
  return { kind: 'audit-object', object: target.object };
}

/** The target in words, as messages name it: "the pod 'web-1' in the namespace 'prod'", "the node 'worker-1'". */
export function describeTarget(ref: TargetRef): string {
  if (ref.kind === 'pod') return describePod(ref.pod);
  if (ref.kind === 'node') return ref.node === undefined ? `the node of ${describePod(ref.pod)}` : describeNode(ref.node);
  return describeObject(ref.object);
}

/** The target as the answer shows it: `{ namespace, pod }`; a node's adds `node`; an object's is `{ resource, namespace, name }`. */
export function answerTarget(ref: TargetRef): Record<string, string> {
  if (ref.kind === 'pod') return { namespace: ref.pod.namespace, pod: ref.pod.name };
  if (ref.kind === 'node') return { namespace: ref.pod.namespace, pod: ref.pod.name, ...(ref.node === undefined ? {} : { node: ref.node.name }) };
  const { resource, namespace, name } = ref.object;
  return { resource: resource.resource, ...(namespace === undefined ? {} : { namespace }), name };
}

/** The target as the log line shows it: a pod as `{ namespace, name }`, as it always was; the others as the answer does. */
export function loggedTarget(ref: TargetRef): Record<string, string> {
  return ref.kind === 'pod' ? { namespace: ref.pod.namespace, name: ref.pod.name } : answerTarget(ref);
}

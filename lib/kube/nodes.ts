import * as D from 'io-ts/Decoder';
import type { V1Node, V1Taint } from '@kubernetes/client-node';
import { list, literal, object } from '../decode';
import { decodedOrFail, isNotFound, mismatch, readObject, stringMap, uidAnswer } from './answers';
import type { Kube } from './client';
import { isApiStatus, KubeAnswerError, type Operation } from './errors';
import { apiPath } from './refs';
import type { NodeName } from '../names';
import { printable } from '../text';

/** A node by name; nodes have no namespace. */
export interface NodeRef {
  readonly name: NodeName;
}

/** The node in words, as every message names it: "the node 'worker-1'". */
export function describeNode(node: NodeRef): string {
  return `the node '${node.name}'`;
}

const nodePath = (node: NodeRef) => apiPath`/api/v1/nodes/${node.name}`;
const nodeOp = (verb: string, node: NodeRef): Operation => ({ verb, resource: 'nodes', group: '', object: describeNode(node) });

/** A taint as the API server has it; its other fields (timeAdded) are kept as sent when the taints are written back. */
const taintAnswer = object({ key: D.string, effect: D.string }, { value: D.string }, 'a taint');

/** The fields of a Node that the guards and actions read, checked before any of them is believed. */
const nodeAnswer = object(
  {
    apiVersion: literal('v1'),
    kind: literal('Node'),
    metadata: object({ name: D.string, uid: uidAnswer }, { resourceVersion: D.string, labels: stringMap, annotations: stringMap }),
    spec: object({}, { unschedulable: D.boolean, taints: list(taintAnswer) }),
  },
  {},
  'a Node',
);

/**
 * The node as the API server has it, or `undefined` when the API server says it does not exist (404 NotFound). Any
 * other answer, a 2xx that is not this very node included, throws.
 */
export function getNode(kube: Kube, node: NodeRef, deadline: number): Promise<V1Node | undefined> {
  return readObject(kube, { method: 'GET', path: nodePath(node), op: nodeOp('get', node) }, nodeAnswer, 'that node', node, deadline);
}

/** A taint as it is written: key, value and effect; `timeAdded` where the API server set one, kept as it was read. */
export type NodeTaint = Pick<V1Taint, 'key' | 'value' | 'effect' | 'timeAdded'>;

/**
 * A JSON merge patch (RFC 7386) of a node's scheduling. A merge patch replaces a list whole, so `taints` is the whole
 * list and goes with the `resourceVersion` it was read at: the API server refuses it (409) if the node changed since,
 * and a taint someone else added meanwhile is never overwritten.
 */
export interface NodeSchedulingPatch {
  metadata: {
    /** The uid of the node as read: immutable, so the API server refuses the patch if the name now holds another node. */
    uid: string;
    resourceVersion?: string;
  };
  spec: { unschedulable?: true; taints?: NodeTaint[] };
}

/**
 * What a scheduling patch did: `patched`; `gone` (the node was deleted since it was read); `replaced` (another node
 * holds the name); `conflict` (it changed since it was read: read it again), `ourOwn` when an earlier attempt of this
 * very patch may have been carried out and its answer lost.
 */
export type PatchNodeResult =
  | { readonly outcome: 'patched' }
  | { readonly outcome: 'gone' }
  | { readonly outcome: 'replaced' }
  | { readonly outcome: 'conflict'; readonly ourOwn: boolean };

const sameTaint = (a: NodeTaint, b: NodeTaint) => a.key === b.key && a.effect === b.effect && (a.value ?? '') === (b.value ?? '');

/**
 * Patches the node's scheduling and checks the answer is that node (name and uid) with the patch in effect: unschedulable
 * as asked, and every taint of the patch on it. A proxy answering anything else fails, saying the change is not known.
 */
export async function patchNodeScheduling(kube: Kube, node: NodeRef, patch: NodeSchedulingPatch, deadline: number): Promise<PatchNodeResult> {
  const op = nodeOp('patch', node);
  let answer: unknown;
  try {
    answer = await kube.request<unknown>({ method: 'PATCH', path: nodePath(node), op, body: patch, contentType: 'application/merge-patch+json' }, deadline);
  } catch (error) {
    if (isNotFound(error)) return { outcome: 'gone' };
    if (isApiStatus(error, 409)) return { outcome: 'conflict', ourOwn: error.earlierAttemptMayHaveApplied };
    // The uid is immutable: a patch naming another node's uid is refused as invalid, naming the field.
    if (isApiStatus(error, 422) && /\bmetadata\.uid\b/.test(error.apiMessage)) return { outcome: 'replaced' };
    throw error;
  }
  const fail = (problems: string) => new KubeAnswerError(op, `the API server's answer is not that node (${problems}): whether it was patched is not known`);
  const written = decodedOrFail(nodeAnswer, answer, fail);
  const taints = written.spec.taints ?? [];
  const wrong = [
    ...mismatch('metadata.name', node.name, written.metadata.name),
    ...mismatch('metadata.uid', patch.metadata.uid, written.metadata.uid),
    ...(patch.spec.unschedulable === true && written.spec.unschedulable !== true ? ['spec.unschedulable: expected true'] : []),
    ...(patch.spec.taints ?? []).filter((w) => !taints.some((h) => sameTaint(w, h))).map((w) => `spec.taints: ${taintText(w)} missing`),
  ];
  if (wrong.length > 0) throw fail(wrong.join('; '));
  return { outcome: 'patched' };
}

/**
 * A taint as kubectl writes it: `key=value:Effect`, or `key:Effect` without a value. Escaped: a node's existing taints
 * are whatever its kubelet registered, and a compromised node's kubelet is who we act against.
 */
export function taintText(taint: NodeTaint): string {
  return printable(`${taint.key}${taint.value === undefined || taint.value === '' ? '' : `=${taint.value}`}:${taint.effect}`);
}

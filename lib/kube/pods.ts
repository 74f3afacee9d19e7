import type { V1Pod } from '@kubernetes/client-node';
import type { Kube } from './client';
import { isApiStatus, type Operation } from './errors';
import type { PodRef } from '../target';

/** The pod in words, as every message names it: "the pod 'web-1' in the namespace 'prod'". */
export function describePod(pod: PodRef): string {
  return `the pod '${pod.name}' in the namespace '${pod.namespace}'`;
}

const podPath = (pod: PodRef) => `/api/v1/namespaces/${pod.namespace}/pods/${pod.name}`;
const podOp = (verb: string, pod: PodRef): Operation => ({ verb, resource: 'pods', group: '', object: describePod(pod) });

export function getPod(kube: Kube, pod: PodRef, deadline: number): Promise<V1Pod> {
  return kube.request<V1Pod>({ method: 'GET', path: podPath(pod), op: podOp('get', pod) }, deadline);
}

/**
 * Deletes the pod, but only the very pod that was inspected: the uid precondition makes the API server refuse (409)
 * when a new pod took the name in between.
 */
export function deletePod(
  kube: Kube,
  pod: PodRef,
  options: { gracePeriodSeconds: number; uid?: string | undefined },
  deadline: number,
): Promise<V1Pod> {
  const body = {
    apiVersion: 'v1',
    kind: 'DeleteOptions',
    gracePeriodSeconds: options.gracePeriodSeconds,
    ...(options.uid === undefined ? {} : { preconditions: { uid: options.uid } }),
  };
  return kube.request<V1Pod>({ method: 'DELETE', path: podPath(pod), op: podOp('delete', pod), body }, deadline);
}

/** A JSON merge patch (RFC 7386) of the pod's metadata: a key set to null is removed. */
export interface PodMetadataPatch {
  metadata: {
    /** The uid of the pod as read: the uid is immutable, so the API server refuses the patch if the name now holds another pod. */
    uid?: string;
    labels?: Record<string, string | null>;
    annotations?: Record<string, string | null>;
  };
}

export function mergePatchPod(kube: Kube, pod: PodRef, patch: PodMetadataPatch, deadline: number): Promise<V1Pod> {
  return kube.request<V1Pod>(
    { method: 'PATCH', path: podPath(pod), op: podOp('patch', pod), body: patch, contentType: 'application/merge-patch+json' },
    deadline,
  );
}

/**
 * A metadata patch's uid precondition failed: the name now holds another pod. The uid is immutable, so the API server
 * answers 422 naming `metadata.uid` (seen on v1.20: `metadata.uid: Invalid value: "…": field is immutable`).
 */
export function isReplacedPod(error: unknown): boolean {
  return isApiStatus(error, 422) && /\bmetadata\.uid\b/.test(error.apiMessage);
}

/** Why a replaced pod is left alone, in the words delete-pod uses too. */
export function replacedReason(pod: PodRef, uid: string | undefined): string {
  return `${describePod(pod)} was replaced by a new pod of the same name since it was inspected (uid ${uid ?? 'unknown'}): the new pod is left alone`;
}

import * as D from 'io-ts/Decoder';
import type { V1Pod } from '@kubernetes/client-node';
import { list, literal, object, refined } from '../decode';
import { checkWritten, isDeletedStatus, isNotFound, readObject, stringMap, timeAnswer, uidAnswer } from './answers';
import type { Kube } from './client';
import { isApiStatus, isApiStatusAfterPossiblyAppliedAttempt, type Operation } from './errors';
import { apiPath, type PodRef } from './refs';

/** The pod in words, as every message names it: "the pod 'web-1' in the namespace 'prod'". */
export function describePod(pod: PodRef): string {
  return `the pod '${pod.name}' in the namespace '${pod.namespace}'`;
}

const podPath = (pod: PodRef) => apiPath`/api/v1/namespaces/${pod.namespace}/pods/${pod.name}`;
const podOp = (verb: string, pod: PodRef): Operation => ({ verb, resource: 'pods', group: '', object: describePod(pod) });

const secondsAnswer = refined(D.number, (n) => Number.isInteger(n) && n >= 0, 'a whole number of seconds, 0 or more');

/**
 * The fields of a Pod that the guards and actions read, checked before any of them is believed: a uid above all,
 * since every write carries it as a precondition.
 */
const podAnswer = object(
  {
    apiVersion: literal('v1'),
    kind: literal('Pod'),
    metadata: object(
      { name: D.string, namespace: D.string, uid: uidAnswer },
      {
        resourceVersion: D.string,
        deletionTimestamp: timeAnswer,
        deletionGracePeriodSeconds: secondsAnswer,
        labels: stringMap,
        annotations: stringMap,
        ownerReferences: list(object({ kind: D.string }, { controller: D.boolean })),
      },
    ),
    spec: object({}, { hostNetwork: D.boolean }),
  },
  {},
  'a Pod',
);


/**
 * The pod as the API server has it, or `undefined` when the API server says it does not exist (404 NotFound). Any
 * other answer, a 2xx that is not this very pod included, throws.
 */
export async function getPod(kube: Kube, pod: PodRef, deadline: number): Promise<V1Pod | undefined> {
  const found = await readObject(kube, { method: 'GET', path: podPath(pod), op: podOp('get', pod) }, podAnswer, 'that pod', pod, deadline);
  // The fields read are checked; the client library's type describes the rest, which is the API server's as sent.
  return found as unknown as V1Pod | undefined;
}

/**
 * What a DELETE of the pod did: `deleted` (`answerLost`: an earlier attempt may have deleted it and its answer was
 * lost, so the retry found it gone), `already-gone` (someone else deleted it first), `replaced` (the uid precondition
 * failed: the name holds a new pod, left alone).
 */
export type DeletePodResult =
  | { readonly outcome: 'deleted'; readonly answerLost: boolean }
  | { readonly outcome: 'already-gone' }
  | { readonly outcome: 'replaced' };

/**
 * Deletes the pod, but only the very pod that was inspected: the uid precondition makes the API server refuse (409)
 * when a new pod took the name in between.
 */
export async function deletePod(
  kube: Kube,
  pod: PodRef,
  options: { gracePeriodSeconds: number; uid?: string | undefined },
  deadline: number,
): Promise<DeletePodResult> {
  const body = {
    apiVersion: 'v1',
    kind: 'DeleteOptions',
    gracePeriodSeconds: options.gracePeriodSeconds,
    ...(options.uid === undefined ? {} : { preconditions: { uid: options.uid } }),
  };
  const op = podOp('delete', pod);
  let answer: unknown;
  try {
    answer = await kube.request<unknown>({ method: 'DELETE', path: podPath(pod), op, body }, deadline);
  } catch (error) {
    // Seen on a real API server: the first DELETE deleted the pod and its answer was lost; the retry's 404 reports
    // our own deletion. After a 429 or a refused connection nothing was done, and the 404 is someone else's.
    if (isNotFound(error)) {
      return isApiStatusAfterPossiblyAppliedAttempt(error, 404) ? { outcome: 'deleted', answerLost: true } : { outcome: 'already-gone' };
    }
    if (isApiStatus(error, 409) && error.reason === 'Conflict') return { outcome: 'replaced' };
    throw error;
  }
  if (!isDeletedStatus(answer)) checkWritten(podAnswer, answer, op, 'that pod', { ...pod, uid: options.uid }, 'deleted');
  return { outcome: 'deleted', answerLost: false };
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

/** What a metadata patch did: `patched`, `gone` (the pod was deleted since it was read), `replaced` (another pod holds the name). */
export type PatchPodResult = { readonly outcome: 'patched' } | { readonly outcome: 'gone' } | { readonly outcome: 'replaced' };

export async function mergePatchPod(kube: Kube, pod: PodRef, patch: PodMetadataPatch, deadline: number): Promise<PatchPodResult> {
  const op = podOp('patch', pod);
  let answer: unknown;
  try {
    answer = await kube.request<unknown>({ method: 'PATCH', path: podPath(pod), op, body: patch, contentType: 'application/merge-patch+json' }, deadline);
  } catch (error) {
    if (isNotFound(error)) return { outcome: 'gone' };
    if (isReplacedPod(error)) return { outcome: 'replaced' };
    throw error;
  }
  checkWritten(podAnswer, answer, op, 'that pod', { ...pod, uid: patch.metadata.uid }, 'patched');
  return { outcome: 'patched' };
}

/**
 * A metadata patch's uid precondition failed: the name now holds another pod. The uid is immutable, so the API server
 * answers 422 naming `metadata.uid` (seen on v1.20: `metadata.uid: Invalid value: "…": field is immutable`).
 */
function isReplacedPod(error: unknown): boolean {
  return isApiStatus(error, 422) && /\bmetadata\.uid\b/.test(error.apiMessage);
}

/** Why a replaced pod is left alone, in the words delete-pod uses too. */
export function replacedReason(pod: PodRef, uid: string | undefined): string {
  return `${describePod(pod)} was replaced by a new pod of the same name since it was inspected (uid ${uid ?? 'unknown'}): the new pod is left alone`;
}

import type { Kube, TextAnswer } from './client';
import { isApiStatus, type Operation } from './errors';
import type { ContainerName } from '../names';
import { describePod } from './pods';
import { apiPath, withQuery, type PodRef } from './refs';

/** Which log of a container: the running one's, or the one that ran before its last restart (`previous=true`). */
export type LogKind = 'current' | 'previous';

/** The caps of a log request: the API server (the kubelet) keeps to both, and lib/kube reads no more than `limitBytes`. */
export interface LogCaps {
  /** `tailLines`: only the last lines of the log. */
  readonly tailLines: number;
  /** `limitBytes`: of those, at most this many bytes (the first ones: the kubelet stops there). */
  readonly limitBytes: number;
}

/**
 * A log as read: its bytes (`cut`: the answer went on past `limitBytes`, which only a broken proxy sends, and was cut
 * there); `none` when the container has no such log (no previous container); never what the container wrote about
 * itself, which is the attacker's text and stays in `bytes`.
 */
export type PodLog = { readonly found: true; readonly bytes: Buffer; readonly cut: boolean } | { readonly found: false; readonly reason: string };

/** The log in words: "the previous log of the container 'app' of the pod 'web-1' in the namespace 'prod'". */
export function describeLog(pod: PodRef, container: ContainerName, kind: LogKind): string {
  return `the ${kind === 'previous' ? 'previous log' : 'log'} of the container '${container}' of ${describePod(pod)}`;
}

/**
 * The kubelet's answer when a container never restarted, passed on by the API server as a 400:
 * `previous terminated container "app" in pod "web-1" not found`.
 */
const NO_PREVIOUS = /^previous terminated container "[^"]*" in pod "[^"]*" not found$/;

/**
 * Reads one log of a container (GET pods/log), within `caps`: at most `limitBytes` are read and kept, whatever the
 * answer. A previous log that does not exist is `found: false`; any other failure throws, naming the log.
 */
export async function readPodLog(kube: Kube, pod: PodRef, container: ContainerName, kind: LogKind, caps: LogCaps, deadline: number): Promise<PodLog> {
  const op: Operation = { verb: 'get', resource: 'pods/log', group: '', object: describeLog(pod, container, kind) };
  const path = withQuery(apiPath`/api/v1/namespaces/${pod.namespace}/pods/${pod.name}/log`, {
    container,
    tailLines: caps.tailLines,
    limitBytes: caps.limitBytes,
    ...(kind === 'previous' ? { previous: true } : {}),
  });
  try {
    const answer = await kube.request<TextAnswer>({ method: 'GET', path, op, text: { maxBytes: caps.limitBytes } }, deadline);
    return { found: true, bytes: answer.bytes, cut: answer.cut };
  } catch (error) {
    if (kind === 'previous' && isApiStatus(error, 400) && NO_PREVIOUS.test(error.apiMessage)) {
      return { found: false, reason: 'the container has not restarted: there is no previous log' };
    }
    throw error;
  }
}

import type { V1ObjectMeta } from '@kubernetes/client-node';
import type { Kube } from './client';
import type { PodRef } from '../target';
import { printable } from '../text';
import { describePod } from './pods';

/** The fields of a core/v1 Event we send; timestamps are RFC 3339 text on the wire. */
export interface EventBody {
  apiVersion: 'v1';
  kind: 'Event';
  metadata: Pick<V1ObjectMeta, 'generateName' | 'namespace' | 'labels'>;
  involvedObject: { apiVersion: 'v1'; kind: 'Pod'; name: string; namespace: string; uid?: string };
  reason: string;
  message: string;
  type: 'Normal' | 'Warning';
  source: { component: string };
  firstTimestamp: string;
  lastTimestamp: string;
  count: number;
  reportingComponent: string;
  reportingInstance: string;
}

/** Kubernetes keeps an Event's message to 1 KiB; longer text is cut and says so. */
const MAX_EVENT_MESSAGE = 1024;

/**
 * The message as `kubectl describe pod` may show it: controls and bidi overrides escaped (it quotes alert text),
 * cut to the limit without splitting a surrogate pair.
 */
export function eventMessage(message: string): string {
  const text = printable(message);
  if (text.length <= MAX_EVENT_MESSAGE) return text;
  const end = MAX_EVENT_MESSAGE - 20;
  return `${text.slice(0, /[\ud800-\udbff]/.test(text.charAt(end - 1)) ? end - 1 : end)}… (truncated)`;
}

/**
 * Records what was done on the pod's own event stream, so `kubectl describe pod` shows it:
 * `recordPodEvent(kube, pod, 'FalcoResponseDeleted', 'deleted after rule …', 'delete-pod', deadline)`.
 */
export function recordPodEvent(
  kube: Kube,
  pod: PodRef & { uid?: string | undefined },
  reason: string,
  message: string,
  component: string,
  deadline: number,
  now: Date = new Date(),
): Promise<unknown> {
  const time = now.toISOString().replace(/\.\d+Z$/, 'Z');
  const body: EventBody = {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { generateName: `${pod.name.slice(0, 200)}.`, namespace: pod.namespace },
    involvedObject: {
      apiVersion: 'v1',
      kind: 'Pod',
      name: pod.name,
      namespace: pod.namespace,
      ...(pod.uid === undefined ? {} : { uid: pod.uid }),
    },
    reason,
    message: eventMessage(message),
    type: 'Warning',
    source: { component },
    firstTimestamp: time,
    lastTimestamp: time,
    count: 1,
    reportingComponent: component,
    reportingInstance: component,
  };
  return kube.request(
    {
      method: 'POST',
      path: `/api/v1/namespaces/${pod.namespace}/events`,
      op: { verb: 'create', resource: 'events', group: '', object: `an event about ${describePod(pod)}` },
      body,
    },
    deadline,
  );
}


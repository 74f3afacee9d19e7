import * as D from 'io-ts/Decoder';
import type { V1ObjectMeta } from '@kubernetes/client-node';
import { describeValue, literal, object } from '../decode';
import { decodedOrFail, mismatch } from './answers';
import type { Kube } from './client';
import { KubeAnswerError, type Operation } from './errors';
import { clipped, printable } from '../text';
import { describePod } from './pods';
import { apiPath, type PodRef } from './refs';
import type { NamespaceName } from '../names';

/**
 * The object an Event is about, as `kubectl describe` finds its Events: kind, apiVersion, name, uid, and the namespace
 * of a namespaced one (none for a cluster-wide object such as a Node).
 */
export interface InvolvedObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace?: NamespaceName;
  readonly uid?: string | undefined;
}

/** The fields of a core/v1 Event we send; timestamps are RFC 3339 text on the wire. */
export interface EventBody {
  apiVersion: 'v1';
  kind: 'Event';
  metadata: Pick<V1ObjectMeta, 'name' | 'generateName' | 'namespace' | 'labels'>;
  involvedObject: { apiVersion: string; kind: string; name: string; namespace?: string; uid?: string };
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
  // Cut well inside the limit, so that the mark fits in it too.
  return text.length <= MAX_EVENT_MESSAGE ? text : clipped(text, MAX_EVENT_MESSAGE - 20, '… (truncated)');
}

/**
 * The fields of a stored Event that show it is the one sent: a broken proxy may answer the POST 201 with anything, and
 * `eventRecorded: true` must mean that an Event now says what was done.
 */
const eventAnswer = object(
  {
    apiVersion: literal('v1'),
    kind: literal('Event'),
    metadata: object({ name: D.string, namespace: D.string, uid: D.string }),
    involvedObject: object({ name: D.string }, { uid: D.string }),
    reason: D.string,
  },
  {},
  'an Event',
);

/** The API server names an object from its generateName's first 58 characters and 5 random ones (apiserver's names.SimpleNameGenerator). */
const GENERATED_NAME_BASE = 58;

/**
 * Checks the answer to an Event POST to `namespace` is the Event sent, stored: in that namespace, named as sent (or from its
 * generateName), about the same object, for the same reason. Otherwise throws, saying what differs:
 * `create an event about … failed: the API server's answer is not the Event sent (…): whether it was recorded is not known`.
 */
export function checkEventStored(answer: unknown, sent: EventBody, namespace: string, op: Operation): void {
  const fail = (problems: string) =>
    new KubeAnswerError(op, `the API server's answer is not the Event sent (${problems}): whether it was recorded is not known`);
  const { metadata, involvedObject, reason } = decodedOrFail(eventAnswer, answer, fail);
  const base = (sent.metadata.generateName ?? '').slice(0, GENERATED_NAME_BASE);
  const named =
    sent.metadata.name !== undefined
      ? metadata.name === sent.metadata.name
      : metadata.name.length > base.length && metadata.name.startsWith(base);
  const expectedName =
    sent.metadata.name !== undefined ? describeValue(sent.metadata.name) : `a name generated from ${describeValue(base)}`;
  const wrong = [
    ...mismatch('metadata.namespace', namespace, metadata.namespace),
    ...(named ? [] : [`metadata.name: expected ${expectedName}, got ${describeValue(metadata.name)}`]),
    ...mismatch('involvedObject.name', sent.involvedObject.name, involvedObject.name),
    ...mismatch('involvedObject.uid', sent.involvedObject.uid, involvedObject.uid),
    ...mismatch('reason', sent.reason, reason),
  ];
  if (wrong.length > 0) throw fail(wrong.join('; '));
}

/**
 * Records what was done on the pod's own event stream, so `kubectl describe pod` shows it:
 * `recordPodEvent(kube, pod, 'FalcoResponseDeleted', 'deleted after rule …', 'delete-pod', deadline)`.
 * Resolves once the API server's answer is checked to be that Event (checkEventStored); rejects otherwise.
 */
export function recordPodEvent(
  kube: Kube,
  pod: PodRef & { uid?: string | undefined },
  reason: string,
  message: string,
  component: string,
  deadline: number,
  now: Date = new Date(),
): Promise<void> {
  const about = { apiVersion: 'v1', kind: 'Pod', name: pod.name, namespace: pod.namespace, uid: pod.uid };
  return recordEvent(kube, about, describePod(pod), { reason, message, component }, deadline, now);
}

/** Where the Events of cluster-wide objects go (recordEvent's path says the same). */
const CLUSTER_EVENTS_NAMESPACE = 'default';

/**
 * Records what was done on the event stream of any object, so `kubectl describe` shows it: a namespaced object's Event
 * goes in its namespace, a cluster-wide object's (a Node, a ClusterRole) in `default`, as the kubelet records a node's.
 * `description` names the object in an error: "the node 'worker-1'". Resolves once the API server's answer is checked
 * to be that Event (checkEventStored); rejects otherwise.
 */
export async function recordEvent(
  kube: Kube,
  about: InvolvedObject,
  description: string,
  event: { readonly reason: string; readonly message: string; readonly component: string },
  deadline: number,
  now: Date = new Date(),
): Promise<void> {
  const { reason, message, component } = event;
  const time = now.toISOString().replace(/\.\d+Z$/, 'Z');
  const namespace = about.namespace ?? CLUSTER_EVENTS_NAMESPACE;
  const body: EventBody = {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { generateName: `${about.name.slice(0, 200)}.`, namespace },
    involvedObject: {
      apiVersion: about.apiVersion,
      kind: about.kind,
      name: about.name,
      ...(about.namespace === undefined ? {} : { namespace: about.namespace }),
      ...(about.uid === undefined ? {} : { uid: about.uid }),
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
  const op: Operation = { verb: 'create', resource: 'events', group: '', object: `an event about ${description}` };
  const path = about.namespace === undefined ? apiPath`/api/v1/namespaces/default/events` : apiPath`/api/v1/namespaces/${about.namespace}/events`;
  const answer = await kube.request<unknown>({ method: 'POST', path, op, body }, deadline);
  checkEventStored(answer, body, namespace, op);
}

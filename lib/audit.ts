import type { FalcoAlert } from './alert';
import { describeValue } from './decode';
import { printable } from './text';
import type { Kube } from './kube/client';
import { recordEvent, type InvolvedObject } from './kube/events';
import { describeNode } from './kube/nodes';
import { describeObject } from './kube/objects';
import { describePod } from './kube/pods';
import type { Logger } from './log';
import { describeTarget, type Target } from './resolve';
import type { PodRef } from './target';

/** Falcosidekick's uuid is a UUID; anything else is quoted and cut short, as any attacker-written value. */
const UUID_LIKE = /^[0-9A-Fa-f-]{1,64}$/;

/** The alert in one line for audit Events and messages: `the Falco rule "X" (priority Notice, alert uuid U)`. */
export function alertSummary(alert: FalcoAlert): string {
  const uuid = alert.uuid == null ? 'none' : UUID_LIKE.test(alert.uuid) ? alert.uuid : describeValue(alert.uuid);
  return `the Falco rule ${printable(JSON.stringify(alert.rule.slice(0, 200)))} (priority ${alert.priority}, alert uuid ${uuid})`;
}

export interface AuditContext {
  readonly alert: FalcoAlert;
  readonly kube: Kube;
  readonly log: Logger;
  readonly deadline: number;
}

/** An object an audit Event is recorded on, and how messages name it. */
interface Subject {
  readonly about: InvolvedObject;
  readonly description: string;
}

/**
 * The objects whose event streams show a change to the target: the pod itself; for a node, the node and the pod that
 * led to it (`kubectl describe node` and `kubectl describe pod` both show it); the object an audit alert names.
 */
function subjectsOf(target: Target): Subject[] {
  switch (target.kind) {
    case 'pod':
      return [podSubject(target.pod, target.found.metadata?.uid)];
    case 'node':
      return [
        { about: { apiVersion: 'v1', kind: 'Node', name: target.node.name, uid: target.found.metadata?.uid }, description: describeNode(target.node) },
        podSubject(target.pod, target.podUid),
      ];
    case 'audit-object': {
      const { resource, namespace, name } = target.object;
      const apiVersion = resource.group === '' ? resource.version : `${resource.group}/${resource.version}`;
      const about = { apiVersion, kind: resource.kind, name, ...(namespace === undefined ? {} : { namespace }), uid: target.found.metadata.uid };
      return [{ about, description: describeObject(target.object) }];
    }
  }
}

const podSubject = (pod: PodRef, uid: string | undefined): Subject => ({
  about: { apiVersion: 'v1', kind: 'Pod', name: pod.name, namespace: pod.namespace, uid },
  description: describePod(pod),
});

/**
 * Records a change on the event streams of the target (subjectsOf: a node's and its pod's, say), best effort: a failure,
 * or a 2xx answer that is not the Event sent (lib/kube/events.ts checkEventStored), is logged and answered as
 * `eventRecorded: false`, never undoing or failing the change; `true` only when every Event was recorded. Each reads
 * `<action> <what> after the Falco rule "…" (priority …, alert uuid …)`.
 */
export async function recordAudit(
  context: AuditContext,
  target: Target,
  audit: { readonly action: string; readonly reason: string; readonly what: string; readonly change: string },
): Promise<boolean> {
  const event = { reason: audit.reason, message: `${audit.action} ${audit.what} after ${alertSummary(context.alert)}`, component: `falco-response/${audit.action}` };
  // One after the other: the second Event is one more request, not worth a second connection at the same moment.
  let recorded = true;
  for (const subject of subjectsOf(target)) {
    try {
      await recordEvent(context.kube, subject.about, subject.description, event, context.deadline);
    } catch (error) {
      // A pod's warning reads as it always has; another target's names the object whose Event is missing.
      const what = target.kind === 'pod' ? 'the pod was' : `${describeTarget(target)} was`;
      const where = target.kind === 'pod' ? '' : ` on ${subject.description}`;
      context.log.warn(`${what} ${audit.change} but the audit event${where} could not be recorded`, { error: (error as Error).message });
      recorded = false;
    }
  }
  return recorded;
}

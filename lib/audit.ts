import type { FalcoAlert } from './alert';
import { describeValue } from './decode';
import { printable } from './text';
import type { Kube } from './kube/client';
import { recordPodEvent } from './kube/events';
import type { Logger } from './log';
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

/**
 * Records a change on the pod's own event stream, best effort: a failure, or a 2xx answer that is not the Event sent
 * (lib/kube/events.ts checkEventStored), is logged and answered as `eventRecorded: false`, never undoing or failing the
 * change. The Event reads
 * `<action> <what> after the Falco rule "…" (priority …, alert uuid …)`.
 */
export function recordAudit(
  context: AuditContext,
  pod: PodRef & { uid?: string | undefined },
  audit: { readonly action: string; readonly reason: string; readonly what: string; readonly change: string },
): Promise<boolean> {
  return recordPodEvent(
    context.kube,
    pod,
    audit.reason,
    `${audit.action} ${audit.what} after ${alertSummary(context.alert)}`,
    `falco-response/${audit.action}`,
    context.deadline,
  ).then(
    () => true,
    (error: Error) => {
      context.log.warn(`the pod was ${audit.change} but the audit event could not be recorded`, { error: error.message });
      return false;
    },
  );
}

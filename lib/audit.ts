import type { FalcoAlert } from './alert';
import { describeValue, printable } from './decode';

/** Falcosidekick's uuid is a UUID; anything else is quoted and cut short, as any attacker-written value. */
const UUID_LIKE = /^[0-9A-Fa-f-]{1,64}$/;

/** The alert in one line for audit Events and messages: `the Falco rule "X" (priority Notice, alert uuid U)`. */
export function alertSummary(alert: FalcoAlert): string {
  const uuid = alert.uuid == null ? 'none' : UUID_LIKE.test(alert.uuid) ? alert.uuid : describeValue(alert.uuid);
  return `the Falco rule ${printable(JSON.stringify(alert.rule.slice(0, 200)))} (priority ${alert.priority}, alert uuid ${uuid})`;
}

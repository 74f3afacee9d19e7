import type { FalcoAlert } from './alert';

/** The alert in one line for audit Events and messages: `the Falco rule "X" (priority Notice, alert uuid U)`. */
export function alertSummary(alert: FalcoAlert): string {
  const uuid = alert.uuid ?? 'none';
  return `the Falco rule ${JSON.stringify(alert.rule.slice(0, 200))} (priority ${alert.priority}, alert uuid ${uuid})`;
}

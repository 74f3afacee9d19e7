/**
 * Alerts as Falcosidekick's kubeless output sends them (shared/PROTOCOLS.md section 3), aimed at a test pod.
 */
import { randomUUID } from 'crypto';
import { alertText } from '../../helpers/fixtures';
import { request, SIDEKICK_NAMESPACE } from '../../helpers/runtime-process';

/**
 * The terminal-shell fixture with its pod and namespace replaced, edited as text so the nanosecond integers
 * (evt.time, above 2^53) reach the function exactly as Falco wrote them.
 */
export function terminalShellAlert(namespace: string, pod: string): string {
  const original = alertText('terminal-shell');
  const replaced = original
    .replace('"k8s.ns.name":"default"', `"k8s.ns.name":${JSON.stringify(namespace)}`)
    .replace('"k8s.pod.name":"kubecon"', `"k8s.pod.name":${JSON.stringify(pod)}`)
    .replace('k8s.ns=default k8s.pod=kubecon', `k8s.ns=${namespace} k8s.pod=${pod}`);
  const fields = (JSON.parse(replaced) as { output_fields: Record<string, unknown> }).output_fields;
  if (fields['k8s.ns.name'] !== namespace || fields['k8s.pod.name'] !== pod) {
    throw new Error('test/fixtures/alerts/terminal-shell.json changed: the e2e alert no longer names the test pod');
  }
  return replaced;
}

export interface FunctionAnswer {
  readonly status: number;
  /** The JSON answer, parsed; undefined when the answer is not JSON. */
  readonly body: any;
  readonly text: string;
  /** Milliseconds from the request to the end of the answer. */
  readonly elapsedMs: number;
}

/**
 * A POST exactly as Falcosidekick's in-cluster kubeless output makes it (its headers, a fresh uuid as event-id, the
 * body ending in a newline) to a runtime on 127.0.0.1; with `authorization`, as its webhook output sends a custom header.
 */
export async function postAsSidekick(port: number, alert: string, authorization?: string): Promise<FunctionAnswer> {
  const started = Date.now();
  const answer = await request(port, {
    method: 'POST',
    path: '/',
    headers: {
      // Falcosidekick's webhook output sends it as a custom header; its kubeless output cannot.
      ...(authorization === undefined ? {} : { Authorization: authorization }),
      'Content-Type': 'application/json',
      'User-Agent': 'Falcosidekick',
      'event-id': randomUUID(),
      'event-type': 'falco',
      'event-namespace': SIDEKICK_NAMESPACE,
    },
    body: `${alert}\n`,
  });
  let parsed: unknown;
  try {
    parsed = JSON.parse(answer.body);
  } catch {
    parsed = undefined;
  }
  return { status: answer.status, body: parsed, text: answer.body, elapsedMs: Date.now() - started };
}

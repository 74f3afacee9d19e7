/**
 * Alerts as Falcosidekick's kubeless output sends them (shared/PROTOCOLS.md section 3), aimed at a test pod.
 */
import { randomUUID } from 'crypto';
import * as http from 'http';
import { alertText } from '../../helpers/fixtures';

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
  readonly body: any;
  readonly text: string;
  /** Milliseconds from the request to the end of the answer. */
  readonly elapsedMs: number;
}

/** A POST exactly as Falcosidekick's in-cluster kubeless output makes it: its headers, the body ending in a newline. */
export function postAsSidekick(url: string, alert: string, timeoutMs = 60000): Promise<FunctionAnswer> {
  const body = Buffer.from(`${alert}\n`, 'utf8');
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        agent: false,
        timeout: timeoutMs,
        headers: {
          'Content-Type': 'application/json',
          'User-Agent': 'Falcosidekick',
          'event-id': randomUUID(),
          'event-type': 'falco',
          // The FUNCTION's namespace, not the alert's (PROTOCOLS section 3).
          'event-namespace': 'falco-response',
          'Content-Length': body.length,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, text, elapsedMs: Date.now() - started });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`POST ${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

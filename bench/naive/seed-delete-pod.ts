/**
 * The baseline of the bench's storm: what the response engine this project replaces did for an alert (its
 * delete-pod playbook): take the pod and namespace from output_fields and DELETE that pod, once per alert, with the
 * full @kubernetes/client-node client. No read, no uid precondition, no guard, no Event, nothing shared between
 * alerts: a repeat is one more DELETE (404 once the pod is gone), and an error is a 500. Only alerts of the rules in
 * RULES (comma-separated) are acted on, as the routing table would send them: the baseline at its fairest. Bundled
 * by the bench into a temporary folder and served by the runtime; never shipped.
 */
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';

const config = new KubeConfig();
config.loadFromDefault();
const core = config.makeApiClient(CoreV1Api);
const rules = new Set((process.env.RULES ?? '').split(',').map((r) => r.trim()));

interface Event {
  readonly data?: { rule?: unknown; output_fields?: Record<string, unknown> };
  readonly extensions?: { response?: { status(code: number): void } };
}

export async function handler(event: Event): Promise<Record<string, unknown>> {
  const alert = event.data ?? {};
  if (typeof alert.rule !== 'string' || !rules.has(alert.rule)) return { status: 'skipped' };
  const name = String(alert.output_fields?.['k8s.pod.name']);
  const namespace = String(alert.output_fields?.['k8s.ns.name']);
  try {
    await core.deleteNamespacedPod({ name, namespace });
    return { status: 'done', message: `deleted the pod '${name}' in the namespace '${namespace}'` };
  } catch (error) {
    event.extensions?.response?.status(500);
    return { status: 'failed', error: (error as Error).message.slice(0, 200) };
  }
}

/**
 * The naive build of delete-pod, the baseline of `npm run bench`: the same job (decode the alert exactly as our
 * handler does, read the pod, delete that very pod, record an event) written the usual way, with the full
 * @kubernetes/client-node client. Bundled by bench/cold.ts into a temporary folder; never shipped.
 */
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { decodeEvent, responseOf } from '../../lib/event';
import { targetOf } from '../../lib/target';

const config = new KubeConfig();
config.loadFromDefault();
const core = config.makeApiClient(CoreV1Api);

export async function handler(event: unknown): Promise<Record<string, unknown>> {
  try {
    const { alert } = decodeEvent(event);
    const target = targetOf(alert);
    if (target.kind === 'none') return { status: 'skipped', reason: target.reason };
    const { namespace, name } = target.pod;
    const pod = await core.readNamespacedPod({ name, namespace });
    const uid = pod.metadata?.uid;
    await core.deleteNamespacedPod({ name, namespace, body: { gracePeriodSeconds: 1, ...(uid === undefined ? {} : { preconditions: { uid } }) } });
    const time = new Date();
    await core.createNamespacedEvent({
      namespace,
      body: {
        metadata: { generateName: `${name}.`, namespace },
        involvedObject: { apiVersion: 'v1', kind: 'Pod', name, namespace, ...(uid === undefined ? {} : { uid }) },
        reason: 'FalcoResponseDeleted',
        message: `delete-pod deleted the pod after the rule '${alert.rule}'`,
        type: 'Warning',
        source: { component: 'falco-response/delete-pod' },
        firstTimestamp: time,
        lastTimestamp: time,
        count: 1,
      },
    });
    return { status: 'done', message: `deleted the pod '${name}' in the namespace '${namespace}'` };
  } catch (error) {
    responseOf(event)?.status(500);
    return { status: 'failed', error: (error as Error).message };
  }
}

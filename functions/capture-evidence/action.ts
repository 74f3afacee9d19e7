import { definePodAction, type ActionContext, type Touched } from '../../lib/action';
import { describePod } from '../../lib/kube/pods';
import { readPodLog, type LogKind } from '../../lib/kube/logs';
import { createSecret, deleteSecret, listSecretMetadata, type SecretBody, type SecretMetadata, type SecretRef } from '../../lib/kube/secrets';
import type { Kube } from '../../lib/kube/client';
import type { Logger } from '../../lib/log';
import { sha256 } from '../../lib/hash';
import { clipped } from '../../lib/text';
import { equalitySelector, namespaceName, objectName, type ContainerName, type NamespaceName } from '../../lib/names';
import { ActionFailedError } from '../../lib/outcome';
import { integerText, param } from '../../lib/params';
import {
  ALERT_MAX_BYTES,
  capped,
  DATA_BUDGET_BYTES,
  EVIDENCE_LABELS,
  evidenceLabels,
  KEYS,
  logKey,
  MAX_CONTAINERS,
  noCurrentLog,
  perLogBytes,
  POD_MAX_BYTES,
  podAsKept,
  podContainers,
  secretName,
  type ContainerRole,
} from './evidence';

const parameters = {
  tailLines: param('LOG_TAIL_LINES', integerText(1, 100000), '1000', 'lines of each log read: the last ones (tailLines)'),
  limitBytes: param(
    'LOG_LIMIT_BYTES',
    integerText(1024, DATA_BUDGET_BYTES),
    '131072',
    'bytes of each log read at most (limitBytes: the first of those lines); lowered when all logs would not fit in the Secret',
  ),
  retentionSeconds: param(
    'EVIDENCE_RETENTION_SECONDS',
    integerText(10, 3650 * 86400),
    '604800',
    'seconds evidence is kept (604800: 7 days): each call deletes up to 10 older evidence Secrets',
  ),
};

/** The variable the generator fills with the pod's namespace (downward API): where the evidence is kept. */
const NAMESPACE_ENV = 'POD_NAMESPACE';

/** Evidence Secrets deleted per call at most, and metadata pages read to find them: a call stays short. */
export const RETENTION_DELETES_PER_CALL = 10;
/** Evidence Secrets looked at per call: one page of metadata (about 1 KB each). */
export const RETENTION_LIST_LIMIT = 500;

/** The share of the time left that reading the logs may take: the rest is for saving them and the Event. */
const LOG_TIME_SHARE = 0.6;
/** The share of the time left after saving that retention may take: the rest is for the Event. */
const RETENTION_TIME_SHARE = 0.5;

const share = (deadline: number, fraction: number) => {
  const now = Date.now();
  return now + Math.floor(Math.max(deadline - now, 0) * fraction);
};

/** One log as the evidence lists it. */
interface LogEntry {
  readonly container: string;
  readonly role: ContainerRole;
  readonly log: LogKind;
  /** saved: in the Secret under `key`; none: there is no such log; unreadable: the API server did not give it, `reason` says why. */
  readonly status: 'saved' | 'none' | 'unreadable';
  readonly key?: string;
  readonly bytes?: number;
  readonly reason?: string;
  /** Why it may not be whole: a cap met. */
  readonly cut?: string;
}

/** Reads the current and previous log of every container at once, each within `perLog` bytes; a failure is listed, not thrown. */
async function readLogs(
  { target, params, kube }: Pick<ActionContext<typeof parameters>, 'kube' | 'target' | 'params'>,
  perLog: number,
  deadline: number,
): Promise<{ entries: LogEntry[]; data: Record<string, Buffer>; failures: string[] }> {
  const { containers, more } = podContainers(target.found);
  const data: Record<string, Buffer> = {};
  const failures: string[] = [];
  const readOne = async (name: ContainerName, role: ContainerRole, kind: LogKind): Promise<LogEntry> => {
    const base = { container: name, role, log: kind };
    try {
      const read = await readPodLog(kube, target.pod, name, kind, { tailLines: params.tailLines, limitBytes: perLog }, deadline);
      if (!read.found) return { ...base, status: 'none', reason: read.reason };
      const key = logKey(name, kind);
      data[key] = read.bytes;
      // The kubelet stops at limitBytes: a log that long may go on. Lines past tailLines are not known to exist.
      const cut = read.cut || read.bytes.length >= perLog ? `reached ${perLog} bytes${perLog < params.limitBytes ? ' (LOG_LIMIT_BYTES lowered to fit)' : ''}: the rest was not read` : undefined;
      return { ...base, status: 'saved', key, bytes: read.bytes.length, ...(cut === undefined ? {} : { cut }) };
    } catch (error) {
      failures.push((error as Error).message);
      return { ...base, status: 'unreadable', reason: (error as Error).message };
    }
  };
  const currentLog = (name: ContainerName, role: ContainerRole): Promise<LogEntry> => {
    const absent = noCurrentLog(target.found, role, name);
    return absent === undefined ? readOne(name, role, 'current') : Promise.resolve({ container: name, role, log: 'current', status: 'none', reason: absent });
  };
  const entries = await Promise.all(
    containers.flatMap((c): Promise<LogEntry>[] =>
      'invalid' in c
        ? [Promise.resolve({ container: c.invalid, role: c.role, log: 'current', status: 'unreadable', reason: 'not a valid container name: not read' })]
        : [currentLog(c.name, c.role), readOne(c.name, c.role, 'previous')],
    ),
  );
  if (more > 0) entries.push({ container: `${more} more`, role: 'container', log: 'current', status: 'unreadable', reason: `only the first ${MAX_CONTAINERS} containers are read` });
  return { entries, data, failures };
}

/** The retention's result, for the answer. */
interface Retention {
  readonly removed: number;
  /** In a dry run: how many would have been. */
  readonly wouldRemove?: number;
  readonly error?: string;
}

/** Whether a listed Secret is one of ours, in our namespace, created before `before`: anything else is left alone. */
function expired(item: SecretMetadata, namespace: NamespaceName, before: number): boolean {
  const created = Date.parse(item.creationTimestamp ?? '');
  return item.namespace === namespace && Object.entries(EVIDENCE_LABELS).every(([key, value]) => item.labels[key] === value) && created < before;
}

/**
 * Deletes the evidence Secrets of the own namespace older than the retention, oldest first, at most
 * RETENTION_DELETES_PER_CALL, each with a uid precondition. Best effort: a failure is logged and answered, never
 * undoing the capture.
 */
async function enforceRetention(kube: Kube, namespace: NamespaceName, seconds: number, dryRun: boolean, log: Logger, deadline: number): Promise<Retention> {
  const selector = equalitySelector(EVIDENCE_LABELS);
  if (selector === undefined) throw new Error('the evidence labels are not a label selector');
  const before = Date.now() - seconds * 1000;
  let removed = 0;
  try {
    const old = (await listSecretMetadata(kube, namespace, selector, RETENTION_LIST_LIMIT, deadline)).filter((item) => expired(item, namespace, before));
    old.sort((a, b) => Date.parse(a.creationTimestamp ?? '') - Date.parse(b.creationTimestamp ?? ''));
    const chosen = old.slice(0, RETENTION_DELETES_PER_CALL);
    if (dryRun) return { removed: 0, wouldRemove: chosen.length };
    for (const item of chosen) {
      const name = objectName(item.name);
      if (name === undefined) continue;
      if ((await deleteSecret(kube, { namespace, name }, item.uid, deadline)) === 'deleted') removed++;
    }
    return { removed };
  } catch (error) {
    const message = (error as Error).message;
    log.warn(`old evidence could not all be removed: ${removed} removed`, { error: message });
    return { removed, error: message };
  }
}

export default definePodAction({
  name: 'capture-evidence',
  description:
    "Saves the logs of every container of the alert's pod (current and previous, capped), its spec, status and the alert into one Secret of the function's namespace, named in an Event on the pod.",
  // Every alert is evidence of its own (one Secret each): a repeat is never answered from the memory of an earlier one.
  guardDefaults: { rules: 'Terminal shell in container', settledSeconds: '0' },
  parameters,
  permissions: [
    { apiGroup: '', resource: 'pods', verbs: ['get'] },
    { apiGroup: '', resource: 'pods/log', verbs: ['get'] },
    { apiGroup: '', resource: 'events', verbs: ['create'] },
  ],
  ownNamespacePermissions: [{ apiGroup: '', resource: 'secrets', verbs: ['create', 'list', 'delete'] }],
  namespaceEnv: NAMESPACE_ENV,
  async run({ alert, eventId, target, params, kube, log, ownNamespace, deadline, dryRun }) {
    const { pod, found } = target;
    const of = describePod(pod);
    const namespace = namespaceName(ownNamespace ?? '');
    if (namespace === undefined) {
      throw new ActionFailedError(`the evidence of ${of} was not saved: ${NAMESPACE_ENV}, the function's own namespace, is not known`);
    }
    // The uuid makes one alert's evidence one Secret; an old Falcosidekick sends none, but an event-id (a header holds
    // no newline), kept by the forwarder's retries: with the alert's digest it keys the call as lib/repeats.ts does.
    const uuid = alert.uuid ?? '';
    const key = uuid !== '' ? uuid : eventId === undefined || eventId === '' ? '' : sha256(`${eventId}\n${JSON.stringify(alert)}`, 'hex');
    if (key === '') return { status: 'skipped', code: 'not-applicable', reason: `the alert has no uuid and the call no event-id: the evidence of ${of} could not be saved once only, so it was not` };
    const podUid = found.metadata?.uid ?? '';
    const secret: SecretRef = { namespace, name: secretName(key, podUid) };
    const where = `${secret.namespace}/${secret.name}`;

    // The alert and the pod first, each within its share; the logs share what is left.
    const alertPart = capped(Buffer.from(JSON.stringify(alert, null, 2), 'utf8'), ALERT_MAX_BYTES);
    const podPart = capped(podAsKept(found), POD_MAX_BYTES);
    const readable = podContainers(found).containers.filter((c) => 'name' in c).length;
    const perLog = perLogBytes(params.limitBytes, alertPart.bytes.length + podPart.bytes.length, 2 * readable);
    const logs = await readLogs({ kube, target, params }, perLog, share(deadline, LOG_TIME_SHARE));
    if (logs.failures.length > 0) log.warn(`${logs.failures.length} log(s) of ${of} could not be read: the evidence says why`, { error: clipped(logs.failures.join('; '), 2000) });

    const cuts = [
      ...(alertPart.cutFrom === undefined ? [] : [`${KEYS.alert}: cut to ${ALERT_MAX_BYTES} of ${alertPart.cutFrom} bytes`]),
      ...(podPart.cutFrom === undefined ? [] : [`${KEYS.pod}: cut to ${POD_MAX_BYTES} of ${podPart.cutFrom} bytes`]),
      ...logs.entries.flatMap((e) => (e.cut === undefined ? [] : [`${e.key}: ${e.cut}`])),
    ];
    const caps = { tailLines: params.tailLines, limitBytes: params.limitBytes, limitBytesPerLog: perLog, alertBytes: ALERT_MAX_BYTES, podBytes: POD_MAX_BYTES, dataBytes: DATA_BUDGET_BYTES };
    const index = { uuid: uuid || null, eventId: uuid === '' ? eventId : undefined, pod: { ...pod, uid: podUid }, caps, logs: logs.entries, cuts };
    const parts: Record<string, Buffer> = { ...logs.data, [KEYS.alert]: alertPart.bytes, [KEYS.pod]: podPart.bytes, [KEYS.index]: Buffer.from(JSON.stringify(index, null, 2), 'utf8') };
    const data: Record<string, string> = {};
    let bytes = 0;
    for (const name of Object.keys(parts).sort()) {
      data[name] = parts[name].toString('base64');
      bytes += parts[name].length;
    }
    const count = (status: LogEntry['status']) => logs.entries.filter((e) => e.status === status).length;
    const summary = `${count('saved')} log(s) saved, ${count('unreadable')} unreadable, ${cuts.length} part(s) cut, ${bytes} bytes`;
    const facts = { secret: { namespace, name: secret.name }, logs: logs.entries, cuts, dataBytes: bytes };
    const retain = () => enforceRetention(kube, namespace, params.retentionSeconds, dryRun, log, share(deadline, RETENTION_TIME_SHARE));
    if (dryRun) {
      const touched: Touched[] = [{ kind: 'Secret', namespace, name: secret.name, changed: true }];
      return { status: 'done', message: `would save the evidence of ${of} to the Secret '${where}' (${summary})`, touched, facts: { ...facts, retention: await retain() } };
    }
    const body: SecretBody = {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'Opaque',
      metadata: {
        name: secret.name,
        namespace,
        labels: evidenceLabels(alert, pod, podUid),
      },
      data,
    };
    let created;
    try {
      created = await createSecret(kube, secret, body, deadline);
    } catch (error) {
      throw new ActionFailedError(`the evidence of ${of} was not saved: ${(error as Error).message}`);
    }
    const changed = created.outcome === 'created';
    const result = { touched: [{ kind: 'Secret', namespace, name: secret.name, changed }], facts: { ...facts, retention: await retain() } };
    if (!changed) return { status: 'done', message: `the evidence of ${of} is already in the Secret '${where}'`, ...result };
    const lost = created.outcome === 'created' && created.answerLost ? '; the answer to an earlier attempt was lost, and the retry found it in place' : '';
    return {
      status: 'done',
      message: `saved the evidence of ${of} to the Secret '${where}' (${summary}${lost})`,
      audit: { reason: 'FalcoResponseEvidence', what: `saved the evidence (logs, spec, status, alert) to the Secret '${where}'`, change: 'captured' },
      ...result,
    };
  },
});

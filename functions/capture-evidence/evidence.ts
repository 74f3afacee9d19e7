/**
 * What capture-evidence writes, with no I/O: the Secret's name and labels from the alert and the pod, the containers
 * whose logs are read, and the Secret's data cut to what the API server accepts.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { FalcoAlert } from '../../lib/alert';
import { describeValue } from '../../lib/decode';
import { sha256 } from '../../lib/hash';
import type { LogKind } from '../../lib/kube/logs';
import { MAX_SECRET_DATA_BYTES } from '../../lib/kube/secrets';
import { labelValueFrom, shortHash } from '../../lib/labels';
import { containerName, objectName, type ContainerName, type ObjectName } from '../../lib/names';
import type { PodRef } from '../../lib/target';

/** The labels every evidence Secret carries, by which retention finds them (and only them) in the own namespace. */
export const EVIDENCE_LABELS: Readonly<Record<string, string>> = { 'app.kubernetes.io/managed-by': 'falco-response', 'falco-response.io/evidence': 'true' };
export const ALERT_UUID_LABEL = 'falco-response.io/alert-uuid';
export const POD_NAMESPACE_LABEL = 'falco-response.io/pod-namespace';
export const POD_NAME_LABEL = 'falco-response.io/pod-name';
export const POD_UID_LABEL = 'falco-response.io/pod-uid';

/**
 * What the Secret's data may weigh: the API server's 1 MiB less 128 KiB of margin (the JSON around the data, and the
 * index written last). Each part has its own share, the logs what the alert and the pod leave.
 */
export const DATA_BUDGET_BYTES = MAX_SECRET_DATA_BYTES - 128 * 1024;
export const ALERT_MAX_BYTES = 128 * 1024;
export const POD_MAX_BYTES = 256 * 1024;
/** Containers whose logs are read, at most: a pod has a few; an answer listing thousands is cut here, and says so. */
export const MAX_CONTAINERS = 32;

/** Keys of the Secret's data. */
export const KEYS = { index: 'evidence.json', alert: 'alert.json', pod: 'pod.json' } as const;
/** The data key of one log: `app.log`, `app.previous.log` (a container name holds no dot, so no two logs share one). */
export const logKey = (container: ContainerName, kind: LogKind): string => `${container}${kind === 'previous' ? '.previous' : ''}.log`;

const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The Secret's name: `falco-evidence-<uuid>-<8 hex of the pod's uid>` (a uuid of another shape hashed), so the same
 * alert about the same pod always lands in the same Secret, and an alert naming another pod with the same uuid (a
 * replayed or forged one) in another.
 */
export function secretName(key: string, podUid: string): ObjectName {
  const part = CANONICAL_UUID.test(key) ? key.toLowerCase() : sha256(key, 'hex').slice(0, 32);
  const name = objectName(`falco-evidence-${part}-${shortHash(podUid)}`);
  // Hex digits and '-' only: always a valid name.
  if (name === undefined) throw new Error('no Secret name');
  return name;
}

/** A label value of free text, hashed or cleaned where it is not one (lib/labels.ts); left out when nothing is left. */
function labelFrom(text: string): string | undefined {
  const derived = labelValueFrom(text);
  return derived.ok ? derived.value : undefined;
}

/** The Secret's labels: ours, the alert's uuid and the pod's namespace, name and uid, each a valid label value. */
export function evidenceLabels(alert: FalcoAlert, pod: PodRef, podUid: string): Record<string, string> {
  const labels: Record<string, string> = { ...EVIDENCE_LABELS, [POD_NAMESPACE_LABEL]: pod.namespace };
  const add = (key: string, text: string | null | undefined) => {
    const value = text === null || text === undefined ? undefined : labelFrom(text);
    if (value !== undefined) labels[key] = value;
  };
  add(ALERT_UUID_LABEL, alert.uuid);
  add(POD_NAME_LABEL, pod.name);
  add(POD_UID_LABEL, podUid);
  return labels;
}

/** Where a container is declared in the pod's spec. */
export type ContainerRole = 'init' | 'container' | 'ephemeral';

/** A container of the pod whose logs are read, or one that is not, and why. */
export type PodContainer = { readonly name: ContainerName; readonly role: ContainerRole } | { readonly invalid: string; readonly role: ContainerRole };

const SPEC_LISTS: readonly [ContainerRole, 'initContainers' | 'containers' | 'ephemeralContainers'][] = [
  ['init', 'initContainers'],
  ['container', 'containers'],
  ['ephemeral', 'ephemeralContainers'],
];

/**
 * The containers of the pod's spec, init and ephemeral ones included, in that order, at most MAX_CONTAINERS (`more`:
 * how many were left out). The spec comes from the API server's answer as sent: a name that is not a container name
 * (a broken proxy) is listed as invalid, quoted, and never read.
 */
export function podContainers(pod: V1Pod): { readonly containers: readonly PodContainer[]; readonly more: number } {
  const spec = (pod.spec ?? {}) as unknown as Record<string, unknown>;
  const all: PodContainer[] = [];
  for (const [role, field] of SPEC_LISTS) {
    const list = spec[field];
    if (!Array.isArray(list)) continue;
    for (const item of list as unknown[]) {
      const raw = (item as { name?: unknown } | null)?.name;
      const name = typeof raw === 'string' ? containerName(raw) : undefined;
      all.push(name === undefined ? { invalid: describeValue(raw ?? null), role } : { name, role });
    }
  }
  return { containers: all.slice(0, MAX_CONTAINERS), more: Math.max(all.length - MAX_CONTAINERS, 0) };
}

const STATUS_LISTS: Readonly<Record<ContainerRole, string>> = { init: 'initContainerStatuses', container: 'containerStatuses', ephemeral: 'ephemeralContainerStatuses' };

/** A reason the kubelet gives a waiting container (`CrashLoopBackOff`, `PodInitializing`), when it is one. */
const WAITING_REASON = /^[A-Za-z]{1,64}$/;

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object';

/**
 * Why a container's current log is not read, from the pod's status as read; undefined: read it. The kubelet answers a
 * container that is neither running nor terminated with its last run's log (validateContainerLogStatus): in a crash
 * loop that is the previous log again, under the name of the current one; a container with no last run (waiting to
 * start) it answers 400. Neither is a current log. A container the status does not list (no kubelet reported it) is
 * read, and the API server says what there is. The status is the API server's copy, which lags the kubelet's by up to
 * its status update (the container may have started since): the reason says what the pod read showed, no more.
 */
export function noCurrentLog(pod: V1Pod, role: ContainerRole, name: ContainerName): string | undefined {
  const list: unknown = (pod.status as Record<string, unknown> | undefined)?.[STATUS_LISTS[role]];
  if (!Array.isArray(list)) return undefined;
  const status: unknown = list.find((s: unknown) => isObject(s) && s.name === name);
  if (!isObject(status)) return undefined;
  const state = isObject(status.state) ? status.state : {};
  if (isObject(state.running) || isObject(state.terminated)) return undefined;
  const reason = isObject(state.waiting) ? state.waiting.reason : undefined;
  const why = typeof reason === 'string' && WAITING_REASON.test(reason) ? ` (${reason})` : '';
  const last = isObject(status.lastState) && isObject(status.lastState.terminated) ? status.lastState.terminated.containerID : undefined;
  return typeof last === 'string' && last !== ''
    ? `when the pod was read, the container was waiting to restart${why}: its current log was not read (the kubelet would have answered its last run's, saved as its previous log)`
    : `when the pod was read, the container had not started yet${why}: its log was not read`;
}

/** A part of the evidence as bytes, cut to `max` bytes if longer, saying so. */
export interface Part {
  readonly bytes: Buffer;
  /** The full size, when it was cut. */
  readonly cutFrom?: number;
}

export function capped(bytes: Buffer, max: number): Part {
  return bytes.length <= max ? { bytes } : { bytes: bytes.subarray(0, max), cutFrom: bytes.length };
}

/** The pod as the evidence keeps it: as read, its managedFields (who wrote which field, often half the object) left out. */
export function podAsKept(pod: V1Pod): Buffer {
  const metadata = { ...(pod.metadata ?? {}) } as Record<string, unknown>;
  delete metadata.managedFields;
  return Buffer.from(JSON.stringify({ ...pod, metadata }, null, 2), 'utf8');
}

/**
 * The bytes each log may take: what the alert and the pod leave of the budget, shared evenly by the logs to read
 * (current and previous of each container), never above LOG_LIMIT_BYTES. The alert and the pod take 384 KiB at most,
 * so 64 logs get 8 KiB each at least.
 */
export function perLogBytes(limitBytes: number, used: number, logs: number): number {
  return Math.min(limitBytes, Math.floor((DATA_BUDGET_BYTES - used) / Math.max(logs, 1)));
}

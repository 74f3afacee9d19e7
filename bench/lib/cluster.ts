/**
 * The real API server of the e2e suite (test/e2e/cluster/up.sh: kube-apiserver 1.20 + etcd on loopback) for the
 * bench's cluster sections: started fresh for a section and stopped after it, however the bench ends; namespaces and
 * pods set up by the floor client; the server's own request counters (apiserver_request_total on its /metrics) to
 * count the Kubernetes calls a run made; a watch on pods to time when an action's effect lands.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'fs';
import * as https from 'https';
import * as os from 'os';
import * as path from 'path';
import { ROOT } from '../../build/main';
import { writeKubeconfig } from '../../test/helpers/fixtures';
import { FloorClient } from './https-client';
import { onCleanup, run } from './processes';

const CLUSTER_DIR = path.join(ROOT, 'test', 'e2e', 'cluster');
const CREATE_IN_FLIGHT = 8;

export interface BenchCluster {
  readonly state: string;
  readonly server: string;
  readonly token: string;
  readonly ca: Buffer;
  /** An admin kubeconfig in the JSON form the bundles read. */
  readonly kubeconfig: string;
  readonly floor: FloorClient;
}

export type ClusterRun<T> = { readonly kind: 'skipped'; readonly reason: string } | { readonly kind: 'done'; readonly value: T };

/** Starts a fresh cluster, runs `body` with it, stops it (also when the bench is aborted meanwhile). */
export async function withCluster<T>(label: string, progress: (line: string) => void, body: (cluster: BenchCluster) => Promise<T>): Promise<ClusterRun<T>> {
  const up = path.join(CLUSTER_DIR, 'up.sh');
  const down = path.join(CLUSTER_DIR, 'down.sh');
  if (!existsSync(up) || !existsSync(down)) return { kind: 'skipped', reason: 'test/e2e/cluster/up.sh is missing' };
  const state = mkdtempSync(path.join(os.tmpdir(), 'falco-response-bench-cluster-'));
  // One stop, whoever asks first (the section's end or an abort); both wait for it. down.sh is never interrupted.
  let stopping: Promise<void> | undefined;
  const stopCluster = () =>
    (stopping ??= (async () => {
      progress(`${label}: stopping the cluster (down.sh)`);
      await run('bash', [down, state], { timeoutMs: 30000, interruptible: false });
      rmSync(state, { recursive: true, force: true });
    })());
  const forget = onCleanup(stopCluster);
  try {
    progress(`${label}: starting kube-apiserver + etcd on loopback (up.sh, about 12 s); if the bench is killed: test/e2e/cluster/down.sh ${state}`);
    const started = await run('bash', [up, state], { timeoutMs: 120000, env: process.env });
    if (started.code === 3) {
      return { kind: 'skipped', reason: `no cluster binaries: run test/e2e/cluster/provision.sh once (${started.stderr.trim().split('\n').pop() ?? ''})` };
    }
    if (started.code !== 0) throw new Error(`up.sh failed (${String(started.code)}): ${(started.stderr || started.stdout).trim().split('\n').slice(-4).join(' | ')}`);
    const server = readFileSync(path.join(state, 'server'), 'utf8').trim();
    const token = readFileSync(path.join(state, 'admin.token'), 'utf8').trim();
    const ca = readFileSync(path.join(state, 'ca.crt'));
    const kubeconfig = writeKubeconfig(path.join(state, 'bench.kubeconfig.json'), { server, token, caData: ca.toString('base64') });
    const floor = new FloorClient(server, token, ca);
    try {
      return { kind: 'done', value: await body({ state, server, token, ca, kubeconfig, floor }) };
    } finally {
      floor.close();
    }
  } finally {
    forget();
    await stopCluster();
  }
}

/** Creates a namespace and waits until pods may be created in it. */
export async function createNamespace(floor: FloorClient, name: string): Promise<string> {
  await floor.ok('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  await waitForServiceAccount(floor, name);
  return name;
}

export async function waitForServiceAccount(floor: FloorClient, namespace: string): Promise<void> {
  // Kubernetes 1.20 admits a pod only once its namespace's default ServiceAccount has its token secret.
  const deadline = Date.now() + 30000;
  for (;;) {
    const answer = await floor.request('GET', `/api/v1/namespaces/${namespace}/serviceaccounts/default`);
    if (answer.status === 200 && ((JSON.parse(answer.text) as { secrets?: unknown[] }).secrets ?? []).length > 0) return;
    if (Date.now() > deadline) throw new Error(`the namespace ${namespace} got no default ServiceAccount with a token within 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Creates the pods (no kubelet: they stay Pending, which every action accepts); their uids by name. */
export async function createPods(floor: FloorClient, namespace: string, names: readonly string[]): Promise<Map<string, string>> {
  const uids = new Map<string, string>();
  let next = 0;
  const worker = async () => {
    while (next < names.length) {
      const name = names[next++];
      const pod = await floor.ok<{ metadata: { uid: string } }>('POST', `/api/v1/namespaces/${namespace}/pods`, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace, labels: { app: 'bench' } },
        spec: { containers: [{ name: 'app', image: 'docker.io/library/alpine:3.18', command: ['sleep', '3600'] }], automountServiceAccountToken: false },
      });
      uids.set(name, pod.metadata.uid);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CREATE_IN_FLIGHT, names.length) }, worker));
  return uids;
}

export interface PodState {
  readonly labels: Readonly<Record<string, string>>;
}

/** Every pod of a namespace, by name, with its labels (one LIST). */
export async function listPods(floor: FloorClient, namespace: string): Promise<Map<string, PodState>> {
  const list = await floor.ok<{ items: { metadata: { name: string; labels?: Record<string, string> } }[] }>('GET', `/api/v1/namespaces/${namespace}/pods`);
  return new Map(list.items.map((p) => [p.metadata.name, { labels: p.metadata.labels ?? {} }]));
}

/** Requests the API server answered, by `VERB resource code` (apiserver_request_total; long watches excluded). */
export type RequestCounts = ReadonlyMap<string, number>;

/** The resources the functions touch: the calls counted are these (the control plane's own traffic is elsewhere). */
const COUNTED_RESOURCES = new Set(['pods', 'events', 'networkpolicies', 'nodes']);

const REQUEST_TOTAL = /^apiserver_request_total\{([^}]*)\} ([0-9.e+]+)$/;

export async function requestCounts(floor: FloorClient): Promise<RequestCounts> {
  const answer = await floor.request('GET', '/metrics');
  if (answer.status !== 200) throw new Error(`GET /metrics answered ${answer.status}: ${answer.text.slice(0, 200)}`);
  return parseRequestCounts(answer.text);
}

/** The apiserver_request_total counters of a /metrics text, on the resources the functions touch, watches left out. */
export function parseRequestCounts(metrics: string): RequestCounts {
  const counts = new Map<string, number>();
  for (const line of metrics.split('\n')) {
    const match = REQUEST_TOTAL.exec(line);
    if (match === null) continue;
    const labels = new Map([...match[1].matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    const verb = labels.get('verb') ?? '';
    const resource = labels.get('resource') ?? '';
    if (!COUNTED_RESOURCES.has(resource) || verb === 'WATCH') continue;
    const subresource = labels.get('subresource') ?? '';
    const key = `${verb} ${resource}${subresource === '' ? '' : `/${subresource}`} ${labels.get('code') ?? ''}`;
    counts.set(key, (counts.get(key) ?? 0) + Number(match[2]));
  }
  return counts;
}

/** The calls made between two snapshots, by `VERB resource code`, and in all. */
export function callsBetween(before: RequestCounts, after: RequestCounts): { total: number; byKind: Record<string, number> } {
  const byKind: Record<string, number> = {};
  let total = 0;
  for (const [key, n] of after) {
    const made = n - (before.get(key) ?? 0);
    if (made > 0) {
      byKind[key] = made;
      total += made;
    }
  }
  return { total, byKind: Object.fromEntries(Object.entries(byKind).sort()) };
}

export interface PodEvent {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** process.hrtime.bigint() when the bench read it. */
  readonly at: bigint;
}

/** A watch on the pods of a namespace from now on; `onEvent` sees each change as the API server sends it. */
export async function watchPods(cluster: BenchCluster, namespace: string, onEvent: (event: PodEvent) => void): Promise<{ stop(): void }> {
  const list = await cluster.floor.ok<{ metadata: { resourceVersion: string } }>('GET', `/api/v1/namespaces/${namespace}/pods?limit=1`);
  const url = new URL(cluster.server);
  const request = https.request({
    method: 'GET',
    host: url.hostname,
    port: Number(url.port),
    path: `/api/v1/namespaces/${namespace}/pods?watch=true&resourceVersion=${list.metadata.resourceVersion}&timeoutSeconds=1800`,
    headers: { Accept: 'application/json', Authorization: `Bearer ${cluster.token}` },
    ca: cluster.ca,
    agent: false,
  });
  await new Promise<void>((resolve, reject) => {
    request.on('response', (response) => {
      if (response.statusCode !== 200) {
        reject(new Error(`the watch on the pods of ${namespace} answered ${response.statusCode}`));
        return;
      }
      let pending = '';
      response.on('data', (chunk: Buffer) => {
        const at = process.hrtime.bigint();
        pending += chunk.toString('utf8');
        let end: number;
        while ((end = pending.indexOf('\n')) !== -1) {
          const line = pending.slice(0, end);
          pending = pending.slice(end + 1);
          if (line.trim() === '') continue;
          const event = JSON.parse(line) as { type: string; object: { metadata?: { name?: string; labels?: Record<string, string> } } };
          if (event.type !== 'ADDED' && event.type !== 'MODIFIED' && event.type !== 'DELETED') continue;
          onEvent({ type: event.type, name: event.object.metadata?.name ?? '', labels: event.object.metadata?.labels ?? {}, at });
        }
      });
      response.on('error', () => undefined);
      resolve();
    });
    request.on('error', reject);
    request.end();
  });
  return { stop: () => request.destroy() };
}

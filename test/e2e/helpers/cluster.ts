/**
 * The real API server the e2e suite runs against (test/e2e/cluster/up.sh), reached over loopback HTTPS with the
 * admin token or any other bearer token, and through kubectl with the admin kubeconfig.
 */
import { execFile } from 'child_process';
import { randomBytes } from 'crypto';
import { readFileSync } from 'fs';
import * as https from 'https';
import * as path from 'path';

export interface Cluster {
  /** The state dir up.sh wrote. */
  readonly state: string;
  /** `https://127.0.0.1:<port>` */
  readonly server: string;
  readonly ca: Buffer;
  readonly adminToken: string;
  readonly adminKubeconfig: string;
}

/** A cluster from the state dir up.sh filled. */
export function clusterAt(state: string): Cluster {
  const read = (file: string) => readFileSync(path.join(state, file));
  return {
    state,
    server: read('server').toString('utf8').trim(),
    ca: read('ca.crt'),
    adminToken: read('admin.token').toString('utf8').trim(),
    adminKubeconfig: path.join(state, 'admin.kubeconfig'),
  };
}

let shared: Cluster | undefined;

/** The cluster test/e2e/run.sh started for the whole suite (E2E_STATE). */
export function sharedCluster(): Cluster {
  const state = process.env.E2E_STATE;
  if (state === undefined || state === '') {
    throw new Error('E2E_STATE is not set: run the e2e suite with `npm run test:e2e` (test/e2e/run.sh starts the cluster)');
  }
  shared ??= clusterAt(state);
  return shared;
}

export interface ApiAnswer {
  readonly status: number;
  readonly body: any;
}

export interface ApiCall {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly path: string;
  readonly body?: unknown;
  readonly contentType?: string;
}

/** One HTTPS request to the API server; the admin token unless another bearer token is given. */
export function api(cluster: Cluster, call: ApiCall, token: string = cluster.adminToken, timeoutMs = 10000): Promise<ApiAnswer> {
  const body = call.body === undefined ? undefined : Buffer.from(JSON.stringify(call.body), 'utf8');
  const url = new URL(call.path, cluster.server);
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method: call.method,
        ca: cluster.ca,
        agent: false,
        timeout: timeoutMs,
        headers: {
          Accept: 'application/json',
          Authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { 'Content-Type': call.contentType ?? 'application/json', 'Content-Length': body.length }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = text === '' ? undefined : JSON.parse(text);
          } catch {
            // not JSON: keep the text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${call.method} ${call.path}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Like `api`, but any answer outside 2xx is an error naming the call and the answer. */
export async function apiOk(cluster: Cluster, call: ApiCall, token?: string): Promise<any> {
  const answer = await api(cluster, call, token);
  if (answer.status < 200 || answer.status >= 300) {
    throw new Error(`${call.method} ${call.path} answered ${answer.status}: ${JSON.stringify(answer.body)}`);
  }
  return answer.body;
}

export interface KubectlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** kubectl with the cluster's admin kubeconfig; never throws on a non-zero exit (the caller asserts). */
export function kubectl(cluster: Cluster, args: readonly string[], cwd?: string): Promise<KubectlResult> {
  return new Promise((resolve) => {
    execFile(
      'kubectl',
      [...args],
      { env: { ...process.env, KUBECONFIG: cluster.adminKubeconfig }, cwd, timeout: 60000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Like `kubectl`, but a non-zero exit is an error with kubectl's own words. */
export async function kubectlOk(cluster: Cluster, args: readonly string[], cwd?: string): Promise<string> {
  const result = await kubectl(cluster, args, cwd);
  if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${result.code}: ${result.stderr}${result.stdout}`);
  return result.stdout;
}

/** Polls `check` until it returns a value other than undefined, or fails naming what it waited for. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30000, everyMs = 100): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** A name unique to this run: `e2e-<prefix>-<6 hex>`. */
export function uniqueName(prefix: string): string {
  return `e2e-${prefix}-${randomBytes(3).toString('hex')}`;
}

/**
 * A fresh namespace, ready for pods: the ServiceAccount admission of 1.20 refuses pods until the controller-manager
 * has created the `default` ServiceAccount and its token Secret.
 */
export async function createNamespace(cluster: Cluster, prefix: string): Promise<string> {
  const name = uniqueName(prefix);
  await apiOk(cluster, { method: 'POST', path: '/api/v1/namespaces', body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } });
  await waitFor(`the default ServiceAccount and its token in the namespace '${name}'`, async () => {
    const sa = await api(cluster, { method: 'GET', path: `/api/v1/namespaces/${name}/serviceaccounts/default` });
    return sa.status === 200 && Array.isArray(sa.body.secrets) && sa.body.secrets.length > 0 ? true : undefined;
  });
  return name;
}

/** Deletes namespaces without waiting: the namespace controller finishes the job while the suite goes on. */
export async function deleteNamespaces(cluster: Cluster, names: readonly string[]): Promise<void> {
  await Promise.all(names.map((name) => api(cluster, { method: 'DELETE', path: `/api/v1/namespaces/${name}` })));
}

/** A bare pod; with no kubelet it stays Pending, which is all an action needs. */
export async function createPod(
  cluster: Cluster,
  namespace: string,
  name: string,
  labels: Record<string, string> = { app: 'e2e' },
  spec: { readonly nodeName?: string } = {},
): Promise<any> {
  return apiOk(cluster, {
    method: 'POST',
    path: `/api/v1/namespaces/${namespace}/pods`,
    body: {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace, labels },
      // Never pulled (no kubelet); a bare image name keeps any registry host out of the repository. A pod given a
      // nodeName is bound: deleting it is graceful, and with no kubelet to confirm, it stays terminating (the pod
      // garbage collector removes it as an orphan of a missing node only after a 40 s quarantine).
      spec: { containers: [{ name: 'app', image: 'busybox:1.36' }], terminationGracePeriodSeconds: 1, ...spec },
    },
  });
}

/** The pod as the API server has it now, or undefined when it is gone. */
export async function readPod(cluster: Cluster, namespace: string, name: string): Promise<any> {
  const answer = await api(cluster, { method: 'GET', path: `/api/v1/namespaces/${namespace}/pods/${name}` });
  if (answer.status === 404) return undefined;
  if (answer.status !== 200) throw new Error(`GET pod ${namespace}/${name} answered ${answer.status}: ${JSON.stringify(answer.body)}`);
  return answer.body;
}

/**
 * The Events of `reason` about a pod, once at least `count` are there: the functions record them after their answer
 * (lib/runner.ts), so a test waits for them, then reads again a moment later to see any surplus.
 */
export async function recordedEvents(cluster: Cluster, namespace: string, pod: string, reason: string, count = 1): Promise<any[]> {
  return recordedObjectEvents(cluster, namespace, 'Pod', pod, reason, count);
}

/** `recordedEvents` about an object of any kind, its Events in `namespace` (`default` for a cluster-wide object's). */
export async function recordedObjectEvents(cluster: Cluster, namespace: string, kind: string, name: string, reason: string, count = 1): Promise<any[]> {
  const ofReason = async () => (await objectEvents(cluster, namespace, kind, name)).filter((e) => e.reason === reason);
  await waitFor(`${count} ${reason} Event(s) on the ${kind} ${namespace}/${name}`, async () => ((await ofReason()).length >= count ? true : undefined), 10000);
  await new Promise((resolve) => setTimeout(resolve, 200));
  return ofReason();
}

/** The core/v1 Events recorded about a pod. */
export async function podEvents(cluster: Cluster, namespace: string, pod: string): Promise<any[]> {
  return objectEvents(cluster, namespace, 'Pod', pod);
}

/** The core/v1 Events in `namespace` about an object of `kind` named `name`. */
export async function objectEvents(cluster: Cluster, namespace: string, kind: string, name: string): Promise<any[]> {
  const selector = encodeURIComponent(`involvedObject.kind=${kind},involvedObject.name=${name}`);
  const list = await apiOk(cluster, { method: 'GET', path: `/api/v1/namespaces/${namespace}/events?fieldSelector=${selector}` });
  return list.items as any[];
}

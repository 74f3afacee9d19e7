/**
 * What the node suite deploys, once for all its files: the generated manifests/standalone/ applied as the README
 * says, a Falcosidekick-shaped client pod in the namespace `falco`, and a workload the alerts are about.
 */
import { mkdtempSync, readFileSync, rmSync } from 'fs';
import * as http from 'http';
import { tmpdir } from 'os';
import * as path from 'path';
import { parse } from 'yaml';
import { standaloneFor120 } from '../../helpers/standalone-manifests';
import { getJson, kubectlOk, waitFor } from './node';

export const REPO = path.join(__dirname, '..', '..', '..');
export const FUNCTIONS_NAMESPACE = 'falco-response';
export const SIDEKICK_NAMESPACE = 'falco';
export const WORKLOAD_NAMESPACE = 'e2e-workload';
/** Every function manifests/standalone/ deploys, as its kustomization lists them: a new one is covered as it is built. */
export const FUNCTIONS: readonly string[] = (parse(readFileSync(path.join(REPO, 'manifests', 'standalone', 'kustomization.yaml'), 'utf8')).resources as string[])
  .filter((file) => !file.startsWith('00-'))
  .map((file) => file.replace(/\.yaml$/, ''));
/** The image the client and the workload run: built and imported by the harness (test/e2e/cluster/node/images.sh). */
export const NODE_IMAGE = 'node:24.22.3-alpine';
/** The labels the falcosidekick Helm chart gives its pods. */
export const SIDEKICK_LABELS = { 'app.kubernetes.io/name': 'falcosidekick', 'app.kubernetes.io/instance': 'falcosidekick' };
export const FORWARDER_URL = `http://forwarder.${FUNCTIONS_NAMESPACE}.svc.cluster.local:8080`;
const CONTROL_PORT = 9000;

const HARDENED = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
};
const POD_SECURITY = { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } };

/**
 * The client: POSTs exactly as Falcosidekick's in-cluster kubeless output does (shared/PROTOCOLS.md section 3): its
 * headers, a fresh uuid v4 as event-id, the functions' namespace as event-namespace, the alert with a newline, a new
 * connection for every alert (Falcosidekick makes a new HTTP client per call), no retry. The suite tells it what to
 * send through a control port and gets back what it was answered.
 */
const CLIENT_JS = `
const http = require('http');
const crypto = require('crypto');
function post(target, alert) {
  return new Promise((resolve) => {
    const started = Date.now();
    const body = Buffer.from(alert + '\\n', 'utf8');
    const req = http.request(target, {
      method: 'POST', agent: false, timeout: 60000,
      headers: { 'Content-Type': 'application/json', 'User-Agent': 'Falcosidekick', 'event-id': crypto.randomUUID(),
        'event-type': 'falco', 'event-namespace': ${JSON.stringify(FUNCTIONS_NAMESPACE)}, 'Content-Length': body.length },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8'), ms: Date.now() - started }));
      res.on('error', (e) => resolve({ error: e.code || e.message, ms: Date.now() - started }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ error: e.code || e.message, ms: Date.now() - started }));
    req.end(body);
  });
}
http.createServer((req, res) => {
  if (req.url === '/healthz') return res.end('ok');
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    const order = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify(await post(order.url, order.alert)));
  });
}).listen(${CONTROL_PORT});
`;

/** A small HTTP server, the workload the alerts name. */
const WORKLOAD_JS = "require('http').createServer((q, s) => s.end('ok')).listen(8080)";

function nodePod(name: string, labels: Record<string, string>, script: string, port: number, volumes: any[] = [], mounts: any[] = []): any {
  return {
    metadata: { labels },
    spec: {
      securityContext: POD_SECURITY,
      automountServiceAccountToken: false,
      terminationGracePeriodSeconds: 2,
      containers: [
        {
          name,
          image: NODE_IMAGE,
          imagePullPolicy: 'IfNotPresent',
          command: ['node', '-e', script],
          ports: [{ containerPort: port }],
          readinessProbe: { httpGet: { path: '/healthz', port }, periodSeconds: 1 },
          securityContext: HARDENED,
          resources: { requests: { cpu: '5m', memory: '32Mi' }, limits: { cpu: '250m', memory: '96Mi' } },
          volumeMounts: mounts,
        },
      ],
      volumes,
    },
  };
}

async function apply(objects: any[]): Promise<void> {
  await kubectlOk(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }));
}

export async function rolledOut(namespace: string, deployment: string, timeoutSeconds = 180): Promise<void> {
  await kubectlOk(['-n', namespace, 'rollout', 'status', `deployment/${deployment}`, `--timeout=${timeoutSeconds}s`], undefined, (timeoutSeconds + 10) * 1000);
}

/** The Ready pods of a Deployment (by its selector), oldest first. */
export async function readyPods(namespace: string, selector: string): Promise<any[]> {
  const list = await getJson(['pods', '-n', namespace, '-l', selector]);
  return (list.items as any[])
    .filter((p) => p.metadata.deletionTimestamp === undefined && (p.status.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True'))
    .sort((a, b) => String(a.metadata.creationTimestamp).localeCompare(String(b.metadata.creationTimestamp)));
}

/** The pods of a function that are on their way out. */
async function terminating(fn: string): Promise<string[]> {
  const list = await getJson(['pods', '-n', FUNCTIONS_NAMESPACE, '-l', `function=${fn}`]);
  return (list.items as any[]).filter((p) => p.metadata.deletionTimestamp !== undefined).map((p) => p.metadata.name as string);
}

/** Resolves once the function's Deployment has rolled out and no pod of it is still terminating. */
export async function settled(fn: string): Promise<void> {
  await rolledOut(FUNCTIONS_NAMESPACE, fn);
  await waitFor(`the old pods of ${fn} gone`, async () => ((await terminating(fn)).length === 0 ? true : undefined), 120000, 500);
  await waitFor(`${fn} back to 2 Ready pods`, async () => ((await readyPods(FUNCTIONS_NAMESPACE, `function=${fn}`)).length === 2 ? true : undefined), 120000, 500);
}

/** The container env of a function's Deployment, as applied. */
export async function deploymentEnv(fn: string): Promise<any[]> {
  return (await getJson(['deployment', fn, '-n', FUNCTIONS_NAMESPACE])).spec.template.spec.containers[0].env;
}

/** Replaces the container env of a function's Deployment, rolled out with no old pod left answering. */
export async function setDeploymentEnv(fn: string, env: any[]): Promise<void> {
  await kubectlOk(['-n', FUNCTIONS_NAMESPACE, 'patch', 'deployment', fn, '--type=json', '-p', JSON.stringify([{ op: 'replace', path: '/spec/template/spec/containers/0/env', value: env }])]);
  await settled(fn);
}

/** The env with the given variables set to plain values (each must be in it already: the manifest declares them all). */
export function withValues(env: any[], values: Record<string, string>): any[] {
  const missing = Object.keys(values).filter((name) => !env.some((e) => e.name === name));
  if (missing.length > 0) throw new Error(`not in the Deployment's env: ${missing.join(', ')}`);
  return env.map((e) => (e.name in values ? { name: e.name, value: values[e.name] } : e));
}

export interface Deployed {
  /** The client's pod IP: the suite's control channel to it. */
  readonly clientIp: string;
  readonly clientPod: string;
}

async function deploy(): Promise<Deployed> {
  // As the README says for Kubernetes 1.17 to 1.20: the namespace selector of the callers policies needs this label.
  await apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: SIDEKICK_NAMESPACE, labels: { 'kubernetes.io/metadata.name': SIDEKICK_NAMESPACE } } }]);
  // 1.20 has no policy/v1: the PodDisruptionBudgets as standalone.podDisruptionBudgetApiVersion: policy/v1beta1 writes them.
  const copy = mkdtempSync(path.join(tmpdir(), 'falco-response-standalone-'));
  try {
    await kubectlOk(['apply', '-k', standaloneFor120(copy)]);
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
  await Promise.all(FUNCTIONS.map((f) => rolledOut(FUNCTIONS_NAMESPACE, f)));

  await apply([
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: WORKLOAD_NAMESPACE, labels: { 'kubernetes.io/metadata.name': WORKLOAD_NAMESPACE } } },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'sidekick-client', namespace: SIDEKICK_NAMESPACE }, data: { 'client.js': CLIENT_JS } },
  ]);
  // Namespaces get their default ServiceAccount a moment after they are made; pods are refused until then.
  for (const ns of [SIDEKICK_NAMESPACE, WORKLOAD_NAMESPACE]) {
    await waitFor(`the default ServiceAccount of ${ns}`, async () => ((await getJson(['serviceaccount', 'default', '-n', ns])).secrets?.length > 0 ? true : undefined), 60000);
  }
  const client = nodePod('falcosidekick', SIDEKICK_LABELS, "require('/client/client.js')", CONTROL_PORT, [
    { name: 'client', configMap: { name: 'sidekick-client' } },
  ], [{ name: 'client', mountPath: '/client', readOnly: true }]);
  const workloadLabels = { app: 'web' };
  await apply([
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'falcosidekick', namespace: SIDEKICK_NAMESPACE, labels: SIDEKICK_LABELS },
      spec: { replicas: 1, selector: { matchLabels: SIDEKICK_LABELS }, template: client },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: WORKLOAD_NAMESPACE, labels: workloadLabels },
      spec: { replicas: 2, selector: { matchLabels: workloadLabels }, template: nodePod('web', workloadLabels, WORKLOAD_JS, 8080) },
    },
  ]);
  await rolledOut(SIDEKICK_NAMESPACE, 'falcosidekick');
  await rolledOut(WORKLOAD_NAMESPACE, 'web');
  const [pod] = await readyPods(SIDEKICK_NAMESPACE, 'app.kubernetes.io/name=falcosidekick');
  return { clientIp: pod.status.podIP, clientPod: pod.metadata.name };
}

let deployed: Promise<Deployed> | undefined;

/** Deploys once; every file's `before` awaits the same deployment. */
export function deployedOnce(): Promise<Deployed> {
  deployed ??= deploy();
  return deployed;
}

export interface SidekickAnswer {
  readonly status?: number;
  readonly body?: string;
  readonly error?: string;
  readonly ms: number;
}

/** Has the client pod POST one alert to `url` as Falcosidekick does; what it was answered. */
export function sendFromClient(d: Deployed, alert: string, url = FORWARDER_URL): Promise<SidekickAnswer> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ url, alert });
    const req = http.request(
      { host: d.clientIp, port: CONTROL_PORT, method: 'POST', path: '/send', headers: { 'Content-Type': 'application/json' }, timeout: 90000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as SidekickAnswer));
      },
    );
    req.on('timeout', () => req.destroy(new Error('the client pod did not answer its control port within 90 s')));
    req.on('error', reject);
    req.end(body);
  });
}

/** The forwarder answer's action results, by action. */
export function resultsOf(answer: SidekickAnswer): Record<string, { status: string; httpStatus: number | null; message: string }> {
  const parsed = JSON.parse(answer.body ?? 'null');
  return Object.fromEntries((parsed.results as any[]).map((r) => [r.action, { status: r.status, httpStatus: r.httpStatus, message: r.message }]));
}

/** The first answer of the forwarder: a Service may be programmed a moment after its pods are Ready. */
export function firstAnswer(d: Deployed, alert: string): Promise<SidekickAnswer> {
  return waitFor('an answer from the forwarder', async () => {
    const a = await sendFromClient(d, alert);
    return a.status === undefined ? undefined : a;
  }, 30000);
}

import { readFileSync, writeFileSync } from 'fs';
import * as path from 'path';

export const FIXTURES = path.join(__dirname, '..', 'fixtures');

/** The bearer token of every fake cluster, through nock or over HTTP. */
export const TOKEN = 'test-token';

/** The exact text of an alert fixture (big integers such as evt.time intact). */
export function alertText(name: string): string {
  return readFileSync(path.join(FIXTURES, 'alerts', `${name}.json`), 'utf8');
}

/** A fresh parsed copy of an alert fixture: tests may change it freely. */
export function alert(name: string): Record<string, any> {
  return JSON.parse(alertText(name));
}

/** A stand-in for Express's response: records the status a handler sets. */
export class ResponseStub {
  statusCode = 200;
  status(code: number): this {
    this.statusCode = code;
    return this;
  }
}

/**
 * The event the Kubeless runtime builds for a Falcosidekick POST (shared/PROTOCOLS.md sections 1 and 3):
 * `data` is the parsed JSON body; event-type falco; event-namespace the function's namespace; no event-time.
 */
/**
 * The shared secret the tests give a function (INBOUND_SECRET) and the header its callers send with it: an action
 * that requires one (delete-object) refuses every call without it, so the corpus and fault tests reach its checks.
 */
export const TEST_SECRET = 'test-shared-secret';
export const AUTHORIZED = { authorization: `Bearer ${TEST_SECRET}` } as const;

export function kubelessEvent(data: unknown, eventId = '6f1d3c9e-1b7a-4c2d-9e8f-0a1b2c3d4e5f', headers?: Readonly<Record<string, string>>) {
  const response = new ResponseStub();
  const event = {
    data,
    'event-id': eventId,
    'event-type': 'falco',
    'event-time': undefined,
    'event-namespace': 'falco-response',
    extensions: { request: headers === undefined ? {} : { headers }, response },
  };
  return { event, response };
}

/** The context the runtime passes: FUNC_TIMEOUT seconds. */
export function kubelessContext(timeoutSeconds = 30) {
  return { 'function-name': 'handler', timeout: timeoutSeconds, runtime: 'nodejs14', 'memory-limit': '128Mi' };
}

/** A pod as the API server returns it: `podObject('default', 'kubecon', { ownerKind: 'ReplicaSet' })`. */
export function podObject(
  namespace: string,
  name: string,
  extra: { labels?: Record<string, string>; annotations?: Record<string, string>; ownerKind?: string; uid?: string } = {},
) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace,
      uid: extra.uid ?? `uid-${name}`,
      resourceVersion: '100',
      labels: extra.labels ?? { app: 'web' },
      annotations: extra.annotations ?? {},
      ...(extra.ownerKind === undefined
        ? {}
        : { ownerReferences: [{ apiVersion: 'apps/v1', kind: extra.ownerKind, name: `${name}-owner`, uid: 'owner-uid', controller: true }] }),
    },
    spec: { containers: [{ name: 'app', image: 'nginx' }] },
    status: { phase: 'Running' },
  };
}

/**
 * A running pod owned by a ReplicaSet with everything a real API server adds (about 2 KB), for figures where
 * parsing the answer is part of what a client pays.
 */
export function fullPodObject(namespace: string, name: string): Record<string, unknown> {
  const pod = podObject(namespace, name, { ownerKind: 'ReplicaSet', labels: { app: 'web', 'pod-template-hash': '5d8f7c9b6d' } });
  return {
    ...pod,
    metadata: { ...pod.metadata, creationTimestamp: '2023-05-25T13:40:00Z', annotations: { 'kubernetes.io/psp': 'restricted' } },
    spec: {
      containers: [
        {
          name: 'web',
          image: 'docker.io/library/alpine:3.18',
          command: ['sleep', 'infinity'],
          resources: { requests: { cpu: '10m', memory: '16Mi' } },
          terminationMessagePath: '/dev/termination-log',
          terminationMessagePolicy: 'File',
          imagePullPolicy: 'IfNotPresent',
          volumeMounts: [{ name: 'kube-api-access', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true }],
        },
      ],
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'ClusterFirst',
      serviceAccountName: 'default',
      nodeName: 'node-1',
      securityContext: {},
      schedulerName: 'default-scheduler',
      tolerations: [
        { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
        { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
      ],
      volumes: [{ name: 'kube-api-access', projected: { sources: [{ serviceAccountToken: { expirationSeconds: 3607, path: 'token' } }] } }],
    },
    status: {
      phase: 'Running',
      hostIP: '10.0.0.10',
      podIP: '10.244.1.17',
      startTime: '2023-05-25T13:40:01Z',
      qosClass: 'Burstable',
      conditions: [
        { type: 'Initialized', status: 'True', lastTransitionTime: '2023-05-25T13:40:01Z' },
        { type: 'Ready', status: 'True', lastTransitionTime: '2023-05-25T13:40:03Z' },
        { type: 'ContainersReady', status: 'True', lastTransitionTime: '2023-05-25T13:40:03Z' },
        { type: 'PodScheduled', status: 'True', lastTransitionTime: '2023-05-25T13:40:00Z' },
      ],
      containerStatuses: [
        {
          name: 'web',
          ready: true,
          restartCount: 0,
          image: 'docker.io/library/alpine:3.18',
          imageID: 'docker.io/library/alpine@sha256:48d9183eb12a05c99bcc0bf44a003607b8e941e1d4f41f9ad12bdcc4b5672f86',
          containerID: 'containerd://ee97d9c4186f',
          started: true,
          state: { running: { startedAt: '2023-05-25T13:40:02Z' } },
        },
      ],
    },
  };
}

/** The API server's Status object for an error answer. */
export function status(code: number, reason: string, message: string) {
  return { kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason, code };
}

/** network-isolate's quarantine policy in `default` as the API server stores it (uid and resourceVersion set). */
export const policyStored = () => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: {
    name: 'falco-response-quarantine',
    namespace: 'default',
    uid: 'policy-uid',
    resourceVersion: '4242',
    labels: { 'app.kubernetes.io/managed-by': 'falco-response' },
  },
  spec: { podSelector: { matchLabels: { 'falco-response.io/quarantine': 'true' } }, policyTypes: ['Ingress', 'Egress'] },
});

/**
 * A kubeconfig in the JSON form both our bundles and client-node read (lib/kube/connection.ts), with a bearer token
 * as in-cluster functions use. Plain http gets `insecure-skip-tls-verify`, without which client-node 1.x refuses it;
 * our client ignores the flag for http.
 */
export function kubeconfig(options: { server: string; token: string; caData?: string }): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'fake',
    contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake', namespace: 'default' } }],
    clusters: [
      {
        name: 'fake',
        cluster: {
          server: options.server,
          ...(options.caData === undefined ? {} : { 'certificate-authority-data': options.caData }),
          ...(options.server.startsWith('http:') ? { 'insecure-skip-tls-verify': true } : {}),
        },
      },
    ],
    users: [{ name: 'fake', user: { token: options.token } }],
  };
}

/** Writes `kubeconfig(options)` to `file`, readable by its owner only (it holds a token); returns `file`, for KUBECONFIG. */
export function writeKubeconfig(file: string, options: { server: string; token: string; caData?: string }): string {
  writeFileSync(file, JSON.stringify(kubeconfig(options), null, 2), { mode: 0o600 });
  return file;
}

/** A node as the API server returns it: `nodeObject('worker-1', { taints: [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }] })`. */
export function nodeObject(
  name: string,
  extra: { labels?: Record<string, string>; taints?: Record<string, string>[]; unschedulable?: boolean; uid?: string; resourceVersion?: string } = {},
) {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, uid: extra.uid ?? `uid-${name}`, resourceVersion: extra.resourceVersion ?? '7', labels: extra.labels ?? { 'kubernetes.io/hostname': name } },
    spec: { podCIDR: '10.244.1.0/24', ...(extra.unschedulable === undefined ? {} : { unschedulable: extra.unschedulable }), ...(extra.taints === undefined ? {} : { taints: extra.taints }) },
    status: { conditions: [{ type: 'Ready', status: 'True' }] },
  };
}

/** A pod bound to a node (spec.nodeName), as the scheduler leaves it: `scheduledPodObject('default', 'kubecon', 'worker-1')`. */
export function scheduledPodObject(namespace: string, name: string, node: string) {
  const pod = podObject(namespace, name, { ownerKind: 'ReplicaSet' });
  return { ...pod, spec: { ...pod.spec, nodeName: node } };
}

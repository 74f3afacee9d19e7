/**
 * A tiny stand-in for the Kubernetes API on 127.0.0.1 over plain http, for cold starts: it answers what the pod
 * actions ask (GET, DELETE and PATCH of a pod, POST of events and other objects, GET of anything else is 404) at
 * once, so a first alert measures the function and not a cluster. It also plays the actions the forwarder calls.
 */
import { writeFileSync } from 'fs';
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as path from 'path';

const POD_PATH = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/?]+)/;
export const ACTION_PATH = '/bench-action/';

/** A pod as a real API server returns it (about 2 KB): parsing it is part of what a client pays. */
export function podObject(namespace: string, name: string): Record<string, unknown> {
  return {
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: {
      name,
      namespace,
      uid: '0b9c8f4e-5d0a-4c1e-9b7e-2f6a1d3c4b5a',
      resourceVersion: '4242',
      creationTimestamp: '2023-05-25T13:40:00Z',
      labels: { app: 'web', 'pod-template-hash': '5d8f7c9b6d' },
      annotations: { 'kubernetes.io/psp': 'restricted' },
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-5d8f7c9b6d', uid: 'a1b2c3d4-0000-4000-8000-000000000001', controller: true, blockOwnerDeletion: true },
      ],
    },
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

export interface FakeApi {
  readonly url: string;
  /** Requests answered, by `METHOD what`. */
  readonly counts: Map<string, number>;
  /** Writes a JSON kubeconfig pointing at this server (a bearer token, as in-cluster functions use). */
  writeKubeconfig(dir: string): string;
  close(): Promise<void>;
}

function answer(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

export async function startFakeApi(): Promise<FakeApi> {
  const counts = new Map<string, number>();
  const count = (key: string) => counts.set(key, (counts.get(key) ?? 0) + 1);
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = req.url ?? '/';
      const method = req.method ?? 'GET';
      const body = chunks.length === 0 ? undefined : (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>);
      if (url.startsWith(ACTION_PATH)) {
        const action = url.slice(ACTION_PATH.length).replace(/\/.*$/, '');
        count(`POST action ${action}`);
        answer(res, 200, { status: 'done', action, target: { namespace: 'default', pod: 'kubecon' }, dryRun: false, message: `${action}: done` });
        return;
      }
      const pod = POD_PATH.exec(url);
      if (pod !== null && (method === 'GET' || method === 'DELETE' || method === 'PATCH')) {
        count(`${method} pod`);
        answer(res, 200, podObject(decodeURIComponent(pod[1]), decodeURIComponent(pod[2])));
        return;
      }
      const resource = url.split('?')[0].split('/').filter((p) => p !== '').slice(-1)[0] ?? '';
      count(`${method} ${resource}`);
      if (method === 'POST') {
        const metadata = (body?.metadata ?? {}) as { name?: string; generateName?: string };
        answer(res, 201, { ...body, metadata: { ...metadata, name: metadata.name ?? `${metadata.generateName ?? 'x-'}bench`, uid: 'f00d' } });
      } else if (method === 'PUT' || method === 'PATCH') {
        answer(res, 200, body ?? {});
      } else {
        answer(res, 404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404, message: `${url} not found` });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    counts,
    writeKubeconfig(dir: string): string {
      const file = path.join(dir, 'fake-api.kubeconfig.json');
      // client-node 1.x refuses plain http unless TLS verification is off; our client ignores the flag for http.
      writeFileSync(file, JSON.stringify(jsonKubeconfig({ server: url, token: 'bench-token', insecure: true })));
      return file;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A kubeconfig in JSON form, which both our bundles and client-node read. */
export function jsonKubeconfig(options: { server: string; token: string; caData?: string; insecure?: boolean }): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'bench',
    contexts: [{ name: 'bench', context: { cluster: 'bench', user: 'bench', namespace: 'default' } }],
    clusters: [
      {
        name: 'bench',
        cluster: {
          server: options.server,
          ...(options.caData === undefined ? {} : { 'certificate-authority-data': options.caData }),
          ...(options.insecure === true ? { 'insecure-skip-tls-verify': true } : {}),
        },
      },
    ],
    users: [{ name: 'bench', user: { token: options.token } }],
  };
}

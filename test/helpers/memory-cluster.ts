/**
 * The one fake Kubernetes API server of the tests and the bench: objects in memory, answered as a real API server
 * answers them, behind every transport a test needs: nock for the unit tests (serveCluster in fake-cluster.ts), plain
 * HTTP on 127.0.0.1 for a bundle in its own process (`await cluster.listen()`), and an in-process Kube where no socket
 * may appear (`cluster.kube()`). Every call is recorded; faults are injected per call.
 * It imports no nock: the bench uses it, and nock's interception would sit in front of the bench's own sockets.
 */
import * as http from 'http';
import type { AddressInfo } from 'net';
import type { Kube, KubeRequest, TextAnswer } from '../../lib/kube/client';
import { KubeApiError } from '../../lib/kube/errors';
import { podObject, status, TOKEN, writeKubeconfig } from './fixtures';

/** A reply as nock takes it from a reply function: status, body, headers. */
export type Reply = [number, unknown] | [number, unknown, Record<string, string>];

type KubeObject = {
  metadata?: { name?: string; namespace?: string; generateName?: string; uid?: string; resourceVersion?: string; creationTimestamp?: string; labels?: Record<string, string> };
} & Record<string, unknown>;

/** Which log of a container (`previous=true`: the one before its last restart). */
export type LogKind = 'current' | 'previous';

/** One request as the cluster received it, on whichever transport (`authorization` is undefined in process). */
export interface RecordedCall {
  readonly method: string;
  readonly path: string;
  readonly authorization: string | undefined;
  readonly body: unknown;
  /** Date.now() when it arrived. */
  readonly at: number;
}

/** The cluster served over HTTP on 127.0.0.1. */
export interface ListeningCluster {
  readonly url: string;
  /** Writes a JSON kubeconfig pointing at this server with the bearer token `token`; returns `file`, for KUBECONFIG. */
  writeKubeconfig(file: string, token?: string): string;
  close(): Promise<void>;
}

interface Fault {
  readonly method: string | undefined;
  readonly path: string | undefined;
  left: number;
  readonly reply: Reply;
}

/** RFC 7386 JSON merge patch: objects merge, `null` removes a key, anything else replaces. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const result: Record<string, unknown> =
    target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [key, value] of Object.entries(patch as Record<string, unknown>)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

/** A request body as JSON when it is JSON (patches come as merge-patch+json text), else the text itself. */
export function parsedBody(body: unknown): unknown {
  if (typeof body !== 'string' || body === '') return body;
  try {
    return JSON.parse(body);
  } catch {
    return body;
  }
}

/** `pods "kubecon"`, as the API server names an object in its messages. */
function named(path: string): string {
  const parts = path.split('/');
  const group = parts[1] === 'apis' ? `.${parts[2]}` : '';
  return `${parts[parts.length - 2]}${group} "${parts[parts.length - 1]}"`;
}

/**
 * Just enough of an API server, in memory, for the actions' calls and their races: objects by path, 404 for what is
 * absent, 409 for a create of an existing name, a stale resourceVersion (of a PUT or a patch) or a delete's uid
 * or resourceVersion precondition that no longer holds, 422 for a patch naming another uid.
 * Every request is answered at once and in order, so ten concurrent alerts interleave as they would on a real one.
 * With `keepWrites: false` every write is answered as above but nothing is kept: each call finds the cluster as it was
 * set up (the steady state a bench repeats one alert against).
 */
export class MemoryCluster {
  readonly objects = new Map<string, KubeObject>();
  private version = 100;
  private generated = 0;
  private calls: RecordedCall[] = [];
  private readonly faults: Fault[] = [];
  private readonly keepWrites: boolean;
  private readonly clock: (() => Date) | undefined;
  /** The containers' logs, by `namespace/pod/container/kind`: bytes, as a kubelet keeps them. */
  private readonly logs = new Map<string, Buffer>();

  /** `clock`: created objects get a creationTimestamp from it, as a real API server gives them (none without). */
  constructor(options: { keepWrites?: boolean; clock?: () => Date } = {}) {
    this.keepWrites = options.keepWrites ?? true;
    this.clock = options.clock;
  }

  /**
   * What a container of a pod logged, served by GET pods/log as a kubelet serves it (tailLines, then limitBytes);
   * without a previous log, `previous=true` is answered 400 as the kubelet answers it.
   */
  setLog(namespace: string, pod: string, container: string, log: string | Buffer, kind: LogKind = 'current'): this {
    this.logs.set(`${namespace}/${pod}/${container}/${kind}`, Buffer.isBuffer(log) ? log : Buffer.from(log, 'utf8'));
    return this;
  }

  /** A running pod owned by a ReplicaSet, as the actions expect to find one; `extra` as podObject takes it. */
  addPod(namespace: string, name: string, extra: Parameters<typeof podObject>[2] = {}): this {
    return this.add(podObject(namespace, name, { ownerKind: 'ReplicaSet', ...extra }));
  }

  /**
   * Any core object (`kind` Pod and the like) under its path: `add(fullPodObject('default', 'web'))`; one without a
   * namespace (a Node) under the cluster-wide path, `/api/v1/nodes/<name>`.
   */
  add(object: Record<string, unknown>): this {
    const { namespace, name } = object.metadata as { namespace?: string; name: string };
    const scope = namespace === undefined ? '' : `/namespaces/${namespace}`;
    this.objects.set(`/api/v1${scope}/${String(object.kind).toLowerCase()}s/${name}`, object);
    return this;
  }

  /** Objects under a path prefix, e.g. the events of a namespace. */
  under(prefix: string): KubeObject[] {
    return [...this.objects].filter(([p]) => p.startsWith(prefix)).map(([, o]) => o);
  }

  /** The next `times` calls (of `method` on `path`, where given) are answered `reply`, and the cluster does nothing. */
  failNext(times: number, reply: Reply, match: { method?: string; path?: string } = {}): this {
    this.faults.push({ method: match.method, path: match.path, left: times, reply });
    return this;
  }

  /** The calls received since the last take(), in order; take() forgets them. */
  take(): RecordedCall[] {
    const taken = this.calls;
    this.calls = [];
    return taken;
  }

  /** One call on any transport: recorded, then answered by an injected fault or by the cluster. */
  serve(method: string, path: string, body: unknown, authorization?: string): Reply {
    this.calls.push({ method, path, authorization, body, at: Date.now() });
    const fault = this.faults.find((f) => f.left > 0 && (f.method ?? method) === method && (f.path ?? path) === path);
    if (fault === undefined) return this.answer(method, path, body);
    fault.left--;
    return fault.reply;
  }

  /**
   * The cluster's own answer, nothing recorded and no fault: for tests that wrap it in their own fault model. A query
   * string is ignored (client-node's naive baseline sends some; our client none).
   */
  answer(method: string, url: string, body: unknown): Reply {
    const [path, queryText] = url.split('?');
    const query = new URLSearchParams(queryText ?? '');
    const existing = this.objects.get(path);
    const notFound = (): Reply => [404, status(404, 'NotFound', `${named(path)} not found`)];
    const conflict = (message: string): Reply => [409, status(409, 'Conflict', message)];
    const store = (at: string, object: KubeObject) => this.keepWrites && this.objects.set(at, object);
    switch (method) {
      case 'GET':
        if (existing !== undefined) return [200, existing];
        if (path.endsWith('/log')) return this.log(path, query);
        if (/^\/api\/v1\/namespaces\/[^/]+\/[a-z]+$/.test(path)) return this.metadataList(path, query);
        return notFound();
      case 'POST': {
        const object = { ...(body as KubeObject) };
        const metadata = { ...object.metadata };
        const objectName = metadata.name ?? `${metadata.generateName ?? 'object-'}${(++this.generated).toString(36)}`;
        const objectPath = `${path}/${objectName}`;
        if (this.objects.has(objectPath)) return [409, status(409, 'AlreadyExists', `${named(objectPath)} already exists`)];
        object.metadata = {
          ...metadata,
          name: objectName,
          uid: `uid-${objectName}`,
          resourceVersion: String(++this.version),
          ...(this.clock === undefined ? {} : { creationTimestamp: this.clock().toISOString().replace(/\.\d+Z$/, 'Z') }),
        };
        store(objectPath, object);
        return [201, object];
      }
      case 'PUT': {
        if (existing === undefined) return notFound();
        const object = body as KubeObject;
        const wanted = object.metadata?.resourceVersion;
        if (wanted !== undefined && wanted !== existing.metadata?.resourceVersion) return conflict('the object has been modified');
        const stored = { ...object, metadata: { ...object.metadata, resourceVersion: String(++this.version) } };
        store(path, stored);
        return [200, stored];
      }
      case 'PATCH': {
        if (existing === undefined) return notFound();
        const uid = (body as KubeObject).metadata?.uid;
        // A patch that names another uid is refused as invalid (422), as a real API server does; a delete's uid precondition gives 409.
        if (uid !== undefined && uid !== existing.metadata?.uid) return [422, status(422, 'Invalid', `metadata.uid: Invalid value: "${uid}": field is immutable`)];
        // A resourceVersion in a patch is a precondition, as on a real API server: the object must not have changed since.
        const version = (body as KubeObject).metadata?.resourceVersion;
        if (version !== undefined && version !== existing.metadata?.resourceVersion) {
          return conflict(`Operation cannot be fulfilled on ${named(path)}: the object has been modified; please apply your changes to the latest version and try again`);
        }
        const patched = mergePatch(existing, body) as KubeObject;
        patched.metadata = { ...patched.metadata, resourceVersion: String(++this.version) };
        store(path, patched);
        return [200, patched];
      }
      case 'DELETE': {
        if (existing === undefined) return notFound();
        const { uid, resourceVersion } = (body as { preconditions?: { uid?: string; resourceVersion?: string } } | undefined)?.preconditions ?? {};
        if (uid !== undefined && uid !== existing.metadata?.uid) return conflict(`Precondition failed: UID in precondition: ${uid}`);
        if (resourceVersion !== undefined && resourceVersion !== existing.metadata?.resourceVersion) {
          return conflict(`Precondition failed: ResourceVersion in precondition: ${resourceVersion}, ResourceVersion in object meta: ${existing.metadata?.resourceVersion}`);
        }
        if (this.keepWrites) this.objects.delete(path);
        return [200, existing];
      }
      default:
        return [405, status(405, 'MethodNotAllowed', `${method} is not allowed on ${named(path)}`)];
    }
  }

  /** GET pods/<name>/log: the container's log as the kubelet gives it, or its 400. */
  private log(path: string, query: URLSearchParams): Reply {
    const podPath = path.slice(0, -'/log'.length);
    const pod = this.objects.get(podPath) as { metadata: { name: string; namespace: string }; spec?: Record<string, { name: string }[] | undefined> } | undefined;
    if (pod === undefined) return [404, status(404, 'NotFound', `${named(podPath)} not found`)];
    const container = query.get('container') ?? '';
    const containers = ['initContainers', 'containers', 'ephemeralContainers'].flatMap((list) => pod.spec?.[list] ?? []).map((c) => c.name);
    const podName = pod.metadata.name;
    if (!containers.includes(container)) return [400, status(400, 'BadRequest', `container ${container} is not valid for pod ${podName}`)];
    const kind: LogKind = query.get('previous') === 'true' ? 'previous' : 'current';
    // As the kubelet chooses (validateContainerLogStatus), where the pod's status lists the container: one neither
    // running nor terminated answers its last run's log for the current one, and without a last run a 400.
    const listed = ['initContainerStatuses', 'containerStatuses', 'ephemeralContainerStatuses']
      .flatMap((list) => ((pod as { status?: Record<string, any[] | undefined> }).status?.[list] ?? []))
      .find((s) => s.name === container);
    let served: LogKind = kind;
    if (listed !== undefined && kind === 'current' && listed.state?.running === undefined && listed.state?.terminated === undefined) {
      if (listed.lastState?.terminated?.containerID === undefined) {
        return [400, status(400, 'BadRequest', `container "${container}" in pod "${podName}" is waiting to start: ${listed.state?.waiting?.reason ?? 'ContainerCreating'}`)];
      }
      served = 'previous';
    }
    const log = this.logs.get(`${pod.metadata.namespace}/${podName}/${container}/${served}`);
    if (log === undefined && kind === 'previous') {
      return [400, status(400, 'BadRequest', `previous terminated container "${container}" in pod "${podName}" not found`)];
    }
    let bytes = log ?? Buffer.alloc(0);
    const tailLines = query.get('tailLines');
    if (tailLines !== null) {
      const lines: Buffer[] = [];
      let start = 0;
      for (let i = bytes.indexOf(10); i !== -1; i = bytes.indexOf(10, i + 1)) {
        lines.push(bytes.subarray(start, i + 1));
        start = i + 1;
      }
      if (start < bytes.length) lines.push(bytes.subarray(start));
      bytes = Buffer.concat(lines.slice(-Number(tailLines)));
    }
    const limitBytes = query.get('limitBytes');
    if (limitBytes !== null) bytes = bytes.subarray(0, Number(limitBytes));
    return [200, bytes, { 'Content-Type': 'text/plain' }];
  }

  /**
   * GET on a collection: the objects of that path, selected by a `labelSelector` of `key=value` pairs, at most `limit`,
   * as the metadata-only list our code asks for (`Accept: …;as=PartialObjectMetadataList`) and the only one it makes.
   */
  private metadataList(path: string, query: URLSearchParams): Reply {
    const wanted = (query.get('labelSelector') ?? '').split(',').filter((pair) => pair !== '').map((pair) => pair.split('='));
    const limit = Number(query.get('limit') ?? Infinity);
    const items = [...this.objects]
      .filter(([at, object]) => at.startsWith(`${path}/`) && !at.slice(path.length + 1).includes('/') && wanted.every(([k, v]) => object.metadata?.labels?.[k] === v))
      .slice(0, limit)
      .map(([, object]) => ({ kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: object.metadata }));
    return [200, { kind: 'PartialObjectMetadataList', apiVersion: 'meta.k8s.io/v1', metadata: { resourceVersion: String(this.version) }, items }];
  }

  /** The cluster in process, as the actions' injected Kube: no socket, an error status thrown as KubeApiError. */
  kube(): Kube {
    return {
      request: <T>(request: KubeRequest): Promise<T> => {
        const [code, body] = this.serve(request.method, request.path, request.body);
        if (code >= 200 && code < 300 && request.text !== undefined) {
          const bytes = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body), 'utf8');
          const answer: TextAnswer = { bytes: bytes.subarray(0, request.text.maxBytes), cut: bytes.length > request.text.maxBytes };
          return Promise.resolve(answer as T);
        }
        if (code >= 200 && code < 300) return Promise.resolve(body as T);
        const { reason, message } = body as { reason: string; message: string };
        return Promise.reject(new KubeApiError(request.op, code, reason, message));
      },
    };
  }

  /** Serves the cluster over plain HTTP on 127.0.0.1, for a bundle in its own process (where nock cannot reach). */
  async listen(): Promise<ListeningCluster> {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = parsedBody(Buffer.concat(chunks).toString('utf8'));
        const [code, answer, headers] = this.serve(req.method ?? '', req.url ?? '', body === '' ? undefined : body, req.headers.authorization);
        const text = typeof answer === 'string' || Buffer.isBuffer(answer) ? answer : JSON.stringify(answer);
        res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
        res.end(text);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return {
      url,
      writeKubeconfig: (file, token = TOKEN) => writeKubeconfig(file, { server: url, token }),
      close: () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    };
  }
}

/**
 * Runs a Kubeless-compatible runtime as its own process, with a given Node binary, the way a pod runs it, and talks
 * to it the way Falcosidekick does (shared/PROTOCOLS.md sections 1 and 3). Only loopback is used.
 */
import { execFileSync, spawn, type ChildProcess } from 'child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as path from 'path';
import { listenEnv, runtimeEnv } from '../../lib/kubeless';

const ROOT = path.resolve(__dirname, '..', '..');

/** The Node versions of Kubeless's nodejs12 and nodejs14 runtimes, as test/runtimes/install-node.sh installs them. */
export const KUBELESS_NODE_VERSIONS = ['12.22.12', '14.21.3'] as const;

export interface NodeBinary {
  /** e.g. `v14.21.3` */
  readonly version: string;
  readonly path: string;
}

let installed: NodeBinary[] | undefined;

/** Node 12 and 14 (installed once into a cache outside the repository), then the Node running the tests. */
export function nodeBinaries(): NodeBinary[] {
  if (installed === undefined) {
    const script = path.join(ROOT, 'test', 'runtimes', 'install-node.sh');
    const paths = execFileSync('bash', [script, ...KUBELESS_NODE_VERSIONS], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
      .trim()
      .split('\n');
    installed = [
      ...paths.map((p) => ({ version: execFileSync(p, ['--version'], { encoding: 'utf8' }).trim(), path: p })),
      { version: process.version, path: process.execPath },
    ];
  }
  return installed;
}

/** The Kubeless environment of a function module `<installVolume>/<modName>.js` (PROTOCOLS section 1), on a free port. */
export function kubelessEnv(modName: string, installVolume: string): Record<string, string> {
  return runtimeEnv({ modName, installVolume, timeoutSeconds: 30, runtime: 'nodejs14', memoryLimit: '128Mi', ...LOOPBACK_ANY_PORT });
}

/** Port 0: the system picks a free port, which the runtime prints in its 'listening' line. */
const LOOPBACK_ANY_PORT = { port: 0, host: '127.0.0.1' };

export interface RuntimeProcess {
  readonly port: number;
  readonly child: ChildProcess;
  /** Everything written so far. */
  stdout(): string;
  stderr(): string;
  /**
   * Resolves once stderr holds `text`: the runtime writes a stack before it answers, but the pipe may deliver it
   * after the answer arrives. Bounded by the test's own timeout.
   */
  stderrIncludes(text: string): Promise<void>;
  /** Sends the signal and resolves with how the process ended. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface SpawnOptions {
  /** A Node binary, see nodeBinaries(). */
  readonly node: string;
  /** The runtime program, e.g. kubeless-runtime.js as a generated ConfigMap holds it. */
  readonly runtimeFile: string;
  /** The whole environment: nothing of the test process's own leaks in (no KUBECONFIG, no cluster variables). */
  readonly env: Readonly<Record<string, string>>;
  /** How long the process may take to print its 'listening' line. */
  readonly startTimeoutMs?: number;
}

/** Starts the runtime and resolves once it listens; rejects with its stderr if it exits or stays silent. */
export function spawnRuntime(options: SpawnOptions): Promise<RuntimeProcess> {
  const child = spawn(options.node, [options.runtimeFile], { env: { ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const stderrWaiters: { text: string; resolve: () => void }[] = [];
  child.stderr.on('data', (chunk: Buffer) => {
    err += chunk.toString('utf8');
    for (const waiter of stderrWaiters.filter((w) => err.includes(w.text))) {
      stderrWaiters.splice(stderrWaiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const started = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${options.runtimeFile} did not print its 'listening' line in time; stderr: ${err}`));
    }, options.startTimeoutMs ?? 15000);
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const port = listeningPort(out);
      if (port !== undefined) {
        clearTimeout(timer);
        resolve(port);
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${options.runtimeFile} exited (code ${code}, signal ${signal}) before listening; stderr: ${err}`));
    }, reject);
  });
  return started.then((port) => ({
    port,
    child,
    stdout: () => out,
    stderr: () => err,
    stderrIncludes: (text: string) =>
      err.includes(text) ? Promise.resolve() : new Promise<void>((resolve) => stderrWaiters.push({ text, resolve })),
    stop: (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  }));
}

function listeningPort(stdout: string): number | undefined {
  for (const line of stdout.split('\n')) {
    try {
      const parsed = JSON.parse(line) as { message?: unknown; port?: unknown };
      if (parsed.message === 'listening' && typeof parsed.port === 'number') return parsed.port;
    } catch {
      // access log lines and the function's own log are not the line we wait for
    }
  }
  return undefined;
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

export interface HttpCall {
  readonly method: string;
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

/** One request to 127.0.0.1 on a fresh connection (so that a SIGTERM afterwards finds no idle keep-alive socket). */
export function request(port: number, call: HttpCall): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const body = call.body === undefined ? undefined : Buffer.from(call.body, 'utf8');
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: call.method,
        path: call.path,
        agent: false,
        headers: { ...call.headers, ...(body === undefined ? {} : { 'Content-Length': String(body.length) }) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The namespace Falcosidekick names in `event-namespace`: the function's own (PROTOCOLS section 3). */
export const SIDEKICK_NAMESPACE = 'falco-response';
export const SIDEKICK_EVENT_ID = '0b5b7f0e-8a4c-4b61-9d0e-2f6a1c3e5d7f';

/** A POST exactly as Falcosidekick's kubeless output sends it: path `/`, its headers, no `event-time`. */
export function sidekickPost(
  port: number,
  body: string,
  options: { contentType?: string; path?: string; eventId?: string; authorization?: string } = {},
): Promise<HttpAnswer> {
  return request(port, {
    method: 'POST',
    path: options.path ?? '/',
    headers: {
      // Falcosidekick's webhook output with `customheaders` sends it; its kubeless output cannot.
      ...(options.authorization === undefined ? {} : { Authorization: options.authorization }),
      'Content-Type': options.contentType ?? 'application/json',
      'User-Agent': 'Falcosidekick',
      'event-id': options.eventId ?? SIDEKICK_EVENT_ID,
      'event-type': 'falco',
      'event-namespace': SIDEKICK_NAMESPACE,
    },
    body,
  });
}

interface PodObject {
  kind: string;
  metadata: { name: string; namespace?: string };
  data?: Record<string, string>;
  spec?: {
    template: {
      spec: {
        containers: {
          command?: string[];
          env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
          volumeMounts?: { name: string; mountPath: string }[];
        }[];
        volumes?: { name: string; configMap?: { name: string } }[];
      };
    };
  };
}

export interface EmulatedPod {
  /** The program the container's command runs, under `root`. */
  readonly program: string;
  /** The container's environment, with every mounted path moved under `root`. */
  readonly env: Record<string, string>;
}

/**
 * Lays out a generated Deployment's pod under `root` as the kubelet would: every ConfigMap volume's files at
 * `root + mountPath`, the container's environment resolved (downward API namespace included) with paths moved under
 * `root`. `objects` are the parsed documents of one generated manifest file.
 */
export function emulatePod(objects: readonly unknown[], root: string): EmulatedPod {
  const all = objects as PodObject[];
  const deployment = all.find((o) => o.kind === 'Deployment');
  if (deployment?.spec === undefined) throw new Error('no Deployment among the objects');
  const pod = deployment.spec.template.spec;
  const [container] = pod.containers;
  const mounts = (container.volumeMounts ?? []).map((mount) => {
    const source = pod.volumes?.find((v) => v.name === mount.name)?.configMap?.name;
    const configMap = all.find((o) => o.kind === 'ConfigMap' && o.metadata.name === source);
    if (configMap === undefined) throw new Error(`the volume ${mount.name} is no ConfigMap among the objects`);
    const dir = path.join(root, mount.mountPath);
    mkdirSync(dir, { recursive: true });
    for (const [file, content] of Object.entries(configMap.data ?? {})) writeFileSync(path.join(dir, file), content);
    return mount.mountPath;
  });
  const moved = (value: string) =>
    mounts.some((m) => value === m || value.startsWith(`${m}/`)) ? path.join(root, value) : value;
  const env: Record<string, string> = {};
  for (const variable of container.env ?? []) {
    const field = variable.valueFrom?.fieldRef?.fieldPath;
    const secret = (variable.valueFrom as { secretKeyRef?: { name: string; optional?: boolean } } | undefined)?.secretKeyRef;
    if (field === 'metadata.namespace') env[variable.name] = deployment.metadata.namespace ?? 'default';
    // the manifests ship no Secret: the kubelet leaves a variable from an optional, absent Secret unset
    else if (secret?.optional === true && !all.some((o) => o.kind === 'Secret' && o.metadata.name === secret.name)) continue;
    else if (variable.valueFrom !== undefined) throw new Error(`the variable ${variable.name} has a source this emulation does not know`);
    else env[variable.name] = moved(variable.value ?? ''); // the API server stores an empty value as no value
  }
  const program = container.command?.[1];
  if (container.command?.[0] !== 'node' || program === undefined) throw new Error(`unexpected command ${JSON.stringify(container.command)}`);
  return { program: moved(program), env };
}

/** The pod's environment, on loopback and any free port instead of 0.0.0.0:8080. */
export function onLoopback(env: Readonly<Record<string, string>>): Record<string, string> {
  return { ...env, ...listenEnv(LOOPBACK_ANY_PORT.port, LOOPBACK_ANY_PORT.host) };
}

/** The resident memory of a process, in bytes, as the kernel counts it (VmRSS of /proc/<pid>/status). */
export function rssBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (match === null) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/** Samples a process's RSS every `everyMs` until stopped; `stop()` gives the highest figure seen. */
export function sampleRss(pid: number, everyMs = 20): { stop(): number } {
  let peak = rssBytes(pid);
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rssBytes(pid));
    } catch {
      // the process ended: the last figure stands, and the test sees the exit itself
    }
  }, everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      return peak;
    },
  };
}

/** A Kubernetes memory quantity (`128Mi`, `1Gi`, `500M`, `1048576`) in bytes. */
export function quantityBytes(quantity: string): number {
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|k|M|G)?$/.exec(quantity);
  if (match === null) throw new Error(`not a memory quantity this test knows: ${quantity}`);
  const unit = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, k: 1e3, M: 1e6, G: 1e9 }[match[2] ?? ''] ?? 1;
  return Number(match[1]) * unit;
}

/** A raw connection to 127.0.0.1, for what an HTTP client will not send (partial, slow or endless bodies). */
export function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

export interface RawAnswer {
  readonly status: number;
  readonly head: string;
  readonly body: string;
  /** Date.now() when the whole answer had arrived. */
  readonly receivedAt: number;
}

/**
 * Reads HTTP/1.1 answers off a raw socket as they come: each head up to its blank line, then Content-Length bytes of
 * body. `answers` grows as they arrive; `closed` resolves (and `isClosed()` turns true) when the connection ends.
 */
export function readAnswers(socket: net.Socket): { readonly answers: RawAnswer[]; readonly closed: Promise<void>; readonly isClosed: () => boolean } {
  const answers: RawAnswer[] = [];
  let isClosed = false;
  let buffer: Buffer = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
    for (;;) {
      const end = buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buffer.subarray(0, end).toString('latin1');
      const length = Number(/^content-length:\s*(\d+)$/im.exec(head)?.[1] ?? '0');
      if (buffer.length < end + 4 + length) return;
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? '0');
      answers.push({ status, head, body: buffer.subarray(end + 4, end + 4 + length).toString('utf8'), receivedAt: Date.now() });
      buffer = buffer.subarray(end + 4 + length);
    }
  });
  const closed = new Promise<void>((resolve) => {
    socket.on('error', () => undefined); // a reset after the answer is how some closes end: the answers tell
    socket.on('close', () => {
      isClosed = true;
      resolve();
    });
  });
  return { answers, closed, isClosed: () => isClosed };
}

/** The bytes of a POST as Falcosidekick sends it (PROTOCOLS section 3), for a raw socket. */
export function sidekickRequestBytes(body: string, options: { path?: string; keepAlive?: boolean } = {}): Buffer {
  const bytes = Buffer.from(body, 'utf8');
  return Buffer.concat([
    Buffer.from(
      `POST ${options.path ?? '/'} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nUser-Agent: Falcosidekick\r\n` +
        `event-id: ${SIDEKICK_EVENT_ID}\r\nevent-type: falco\r\nevent-namespace: ${SIDEKICK_NAMESPACE}\r\n` +
        `Content-Length: ${bytes.length}\r\n${options.keepAlive === false ? 'Connection: close\r\n' : ''}\r\n`,
      'latin1',
    ),
    bytes,
  ]);
}

/** Resolves once `done()` holds, polling; rejects naming `what` past `withinMs` (a bound far above any need). */
export async function until(done: () => boolean, what: string, withinMs = 20000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`not within ${withinMs / 1000} s: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

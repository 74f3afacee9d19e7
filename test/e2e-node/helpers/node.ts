/**
 * The node-mode cluster the suite runs in (test/e2e/cluster/node/up.sh): kubectl with the admin kubeconfig, and
 * bounded polling. The suite runs inside the cluster's network namespace (test/e2e-node/run.sh), so pod IPs,
 * ClusterIPs and the API server are all reachable and nothing outside is.
 */
import { execFile } from 'child_process';

export interface KubectlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function kubeconfig(): string {
  const file = process.env.KUBECONFIG;
  if (file === undefined || file === '') {
    throw new Error('KUBECONFIG is not set: run the node suite with `bash test/e2e-node/run.sh`, which starts the cluster');
  }
  return file;
}

/** kubectl with the admin kubeconfig; never rejects: the caller reads the code. */
export function kubectl(args: readonly string[], input?: string, timeoutMs = 60000, env: Readonly<Record<string, string>> = {}): Promise<KubectlResult> {
  return new Promise((resolve) => {
    const child = execFile(
      'kubectl',
      [`--kubeconfig=${kubeconfig()}`, ...args],
      { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, ...env } },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr: stderr || (error?.message ?? '') });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** kubectl that must succeed: its output, or an error with the command and what kubectl said. */
export async function kubectlOk(args: readonly string[], input?: string, timeoutMs?: number, env?: Readonly<Record<string, string>>): Promise<string> {
  const result = await kubectl(args, input, timeoutMs, env);
  if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (exit ${result.code}): ${result.stderr.trim()}`);
  return result.stdout;
}

/** `kubectl get ... -o json`, parsed. */
export async function getJson(args: readonly string[]): Promise<any> {
  return JSON.parse(await kubectlOk(['get', ...args, '-o', 'json']));
}

/**
 * Polls `check` every `everyMs` until it returns a value other than undefined; past `timeoutMs` fails with `what`
 * and the last thing seen (the value `describe` makes of it, or the last error).
 */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = 'nothing yet';
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
      last = 'not yet';
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() >= deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s (last: ${last})`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** A label selector (matchLabels and matchExpressions) in the string form the API server's `labelSelector` takes. */
export function selectorString(selector: { matchLabels?: Record<string, string>; matchExpressions?: any[] }): string {
  const parts = Object.entries(selector.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of selector.matchExpressions ?? []) {
    const values = (e.values ?? []) as string[];
    switch (e.operator) {
      case 'In':
        parts.push(`${e.key} in (${values.join(',')})`);
        break;
      case 'NotIn':
        parts.push(`${e.key} notin (${values.join(',')})`);
        break;
      case 'Exists':
        parts.push(e.key);
        break;
      case 'DoesNotExist':
        parts.push(`!${e.key}`);
        break;
      default:
        throw new Error(`unknown selector operator ${String(e.operator)}`);
    }
  }
  return parts.join(',');
}

/** Names of the objects of a kind that the API server selects with a label selector (an empty selector: all). */
export async function selected(kind: 'pods' | 'namespaces', selector: any, namespace?: string): Promise<string[]> {
  const scope = kind === 'namespaces' ? [] : namespace === undefined ? ['--all-namespaces'] : ['-n', namespace];
  const list = await getJson([kind, ...scope, '-l', selectorString(selector)]);
  return (list.items as any[]).map((o) => (kind === 'pods' ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name)).sort();
}

/** The Events in `namespace` about the object of `kind` named `name` (`default` holds a Node's, as the kubelet's). */
export async function objectEvents(namespace: string, kind: string, name: string): Promise<any[]> {
  const list = await getJson(['events', '-n', namespace, '--field-selector', `involvedObject.kind=${kind},involvedObject.name=${name}`]);
  return list.items as any[];
}

/**
 * The Events of `reason` about an object, once at least `count` are there: the functions record them after their
 * answer (lib/runner.ts).
 */
export function recordedEvents(namespace: string, kind: string, name: string, reason: string, count = 1): Promise<any[]> {
  return waitFor(`${count} Event(s) ${reason} about the ${kind} ${namespace}/${name}`, async () => {
    const found = (await objectEvents(namespace, kind, name)).filter((e) => e.reason === reason);
    return found.length >= count ? found : undefined;
  }, 30000, 250);
}

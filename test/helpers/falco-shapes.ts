import { readdirSync } from 'fs';
import * as path from 'path';
import nock from 'nock';
import { serveApi } from './fake-cluster';
import { FIXTURES } from './fixtures';
import type { MemoryCluster } from './memory-cluster';

/** What an alert fixture is about: the facts the router reads and the target a pod action resolves. */
export interface Shape {
  /** The fixture's file name, without `.json`. */
  readonly fixture: string;
  readonly rule: string;
  readonly priority: string;
  readonly tags: readonly string[];
  readonly source: string | undefined;
  /** The namespace routing sees; undefined when the alert names none. */
  readonly namespace: string | undefined;
  /** The pod a pod action acts on, or why it skips: `no-pod` with its reason, or Falcosidekick's test event. */
  readonly target:
    | { readonly pod: { readonly namespace: string; readonly name: string } }
    | { readonly noPod: string }
    | { readonly testEvent: true };
}

const NAMES_NO_POD = (ns: string, pod: string) =>
  `the alert names no pod (k8s.ns.name is ${ns}, k8s.pod.name is ${pod}): a host event or a container outside Kubernetes`;
const ON_THE_HOST = 'the alert is about the host (container.id is "host"), not a pod';

/** `Terminal shell in container` as falcosecurity/rules 3.x and 4.x tag it, in a pod. */
const SHELL_IN = (namespace: string, name: string): Omit<Shape, 'fixture'> => ({
  rule: 'Terminal shell in container',
  priority: 'Notice',
  tags: ['T1059', 'container', 'maturity_stable', 'mitre_execution', 'shell'],
  source: 'syscall',
  namespace,
  target: { pod: { namespace, name } },
});

/**
 * Every alert fixture (test/fixtures/alerts/README.md says where each comes from) with what it is about, written by
 * hand from the fixture's source, not computed by the code under test.
 */
export const SHAPES: readonly Shape[] = [
  {
    fixture: 'terminal-shell',
    rule: 'Terminal shell in container',
    priority: 'Critical',
    tags: ['container', 'mitre_execution', 'shell'],
    source: 'syscall',
    namespace: 'default',
    target: { pod: { namespace: 'default', name: 'kubecon' } },
  },
  {
    fixture: 'terminal-shell-old-sidekick',
    rule: 'Terminal shell in container',
    priority: 'Notice',
    tags: [],
    source: undefined,
    namespace: 'default',
    target: { pod: { namespace: 'default', name: 'alpine' } },
  },
  {
    fixture: 'terminal-shell-null-pod',
    rule: 'Terminal shell in container',
    priority: 'Notice',
    tags: ['container', 'mitre_execution', 'shell'],
    source: 'syscall',
    namespace: undefined,
    target: { noPod: NAMES_NO_POD('null', 'null') },
  },
  {
    fixture: 'contact-k8s-api',
    rule: 'Contact K8S API Server From Container',
    priority: 'Notice',
    tags: [],
    source: undefined,
    namespace: 'openfaas-fn',
    target: { pod: { namespace: 'openfaas-fn', name: 'falco-pod-delete-7dc9f5fbb8-gbfk7' } },
  },
  {
    fixture: 'packet-socket',
    rule: 'Packet socket created in container',
    priority: 'Notice',
    tags: [],
    source: undefined,
    namespace: 'red-ns',
    target: { pod: { namespace: 'red-ns', name: 'wordpress-66cd544579-cv29k' } },
  },
  {
    fixture: 'docker-privileged-container',
    rule: 'Launch Privileged Container',
    priority: 'Informational',
    tags: ['cis', 'container', 'mitre_lateral_movement', 'mitre_privilege_escalation'],
    source: 'syscall',
    namespace: undefined,
    target: { noPod: NAMES_NO_POD('nothing', 'nothing') },
  },
  {
    fixture: 'host-write-below-etc',
    rule: 'Write below etc',
    priority: 'Error',
    tags: ['filesystem', 'mitre_persistence'],
    source: 'syscall',
    namespace: undefined,
    target: { noPod: ON_THE_HOST },
  },
  {
    fixture: 'sidekick-test-event',
    rule: 'Test rule',
    priority: 'Debug',
    tags: ['test', 'example'],
    source: 'internal',
    namespace: undefined,
    target: { testEvent: true },
  },
  // Falco 0.41 and later: the pod and namespace come from the container plugin's suggested output fields.
  { fixture: 'falco-0.41-terminal-shell-pod', ...SHELL_IN('default', 'hellofalco') },
  {
    fixture: 'falco-0.41-read-sensitive-file-pod',
    rule: 'Read sensitive file untrusted',
    priority: 'Warning',
    tags: ['T1555', 'container', 'filesystem', 'host', 'maturity_stable', 'mitre_credential_access'],
    source: 'syscall',
    namespace: 'default',
    target: { pod: { namespace: 'default', name: 'hellofalco' } },
  },
  { fixture: 'falco-0.41-terminal-shell-message', ...SHELL_IN('default', 'hellofalco') },
  {
    fixture: 'falco-0.41-host-iso8601',
    rule: 'Fileless execution via memfd_create',
    priority: 'Critical',
    tags: ['T1620', 'container', 'host', 'maturity_stable', 'mitre_defense_evasion', 'process'],
    source: 'syscall',
    namespace: undefined,
    target: { noPod: ON_THE_HOST },
  },
  {
    fixture: 'falco-0.41-container-no-pod-iso8601',
    rule: 'Run shell untrusted',
    priority: 'Notice',
    tags: ['T1059.004', 'container', 'host', 'maturity_stable', 'mitre_execution', 'process', 'shell'],
    source: 'syscall',
    namespace: undefined,
    target: { noPod: NAMES_NO_POD('null', 'null') },
  },
  // The k8smeta plugin's fields, beside the container's (append_output) and alone (its suggested output).
  { fixture: 'k8smeta-append-output-pod', ...SHELL_IN('falco', 'nginx') },
  { fixture: 'k8smeta-only-pod', ...SHELL_IN('falco', 'nginx') },
  // Kubernetes audit events (the k8saudit plugins, source k8s_audit): the object is in ka.target.*.
  {
    fixture: 'k8saudit-attach-exec-pod',
    rule: 'Attach/Exec Pod',
    priority: 'Notice',
    tags: ['k8s'],
    source: 'k8s_audit',
    namespace: 'hello-app',
    target: { pod: { namespace: 'hello-app', name: 'nginx-676b6c5bbc-4xc6t' } },
  },
  {
    fixture: 'k8saudit-serviceaccount-created',
    rule: 'K8s Serviceaccount Created',
    priority: 'Informational',
    tags: ['k8s'],
    source: 'k8s_audit',
    namespace: 'default',
    target: { noPod: 'the audit event is about "serviceaccounts", not a named pod' },
  },
];

/** The alert fixtures on disk, by name: SHAPES must describe each of them. */
export function alertFixtureNames(): string[] {
  return readdirSync(path.join(FIXTURES, 'alerts'))
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}

/**
 * Serves `cluster` as test/helpers/fake-cluster.ts serveCluster does (strict, faults applied), and lists every call as
 * `METHOD path` in the array returned, as they come.
 */
export function servedCalls(cluster: MemoryCluster): string[] {
  const calls: string[] = [];
  serveApi((method, path, body, authorization) => {
    calls.push(`${method} ${path}`);
    return cluster.serve(method, path, body, authorization);
  });
  return calls;
}

/** Priorities low to high (shared/PROTOCOLS.md section 3). */
export const PRIORITIES = ['Debug', 'Informational', 'Notice', 'Warning', 'Error', 'Critical', 'Alert', 'Emergency'];

/**
 * A routing table that asks one question of the alert per route, each answered by the facts of `shape`: the routes
 * that match are those named in `expected`; `priority-above` and `other-namespace` never match.
 */
export function probeTable(shape: Shape, action: string): { table: unknown; expected: string[] } {
  const route = (name: string, criteria: Record<string, unknown>) => ({ name, ruleGlobs: ['*'], ...criteria, actions: [action] });
  const routes: Record<string, unknown>[] = [{ name: 'rule', rules: [shape.rule], actions: [action] }];
  const expected = ['rule'];
  routes.push(route('priority', { minimumPriority: shape.priority }));
  expected.push('priority');
  const above = PRIORITIES[PRIORITIES.indexOf(shape.priority) + 1];
  if (above !== undefined) routes.push(route('priority-above', { minimumPriority: above }));
  if (shape.tags.length > 0) {
    routes.push(route('tags', { tags: { allOf: shape.tags } }));
    expected.push('tags');
  }
  if (shape.source !== undefined) {
    routes.push(route('source', { sources: [shape.source] }));
    expected.push('source');
  }
  if (shape.namespace !== undefined) {
    routes.push(route('namespace', { namespaces: { include: [shape.namespace] } }));
    expected.push('namespace');
  } else {
    // Excluding every namespace leaves exactly the alerts that name none.
    routes.push(route('no-namespace', { namespaces: { exclude: ['*'] } }));
    expected.push('no-namespace');
  }
  routes.push(route('other-namespace', { namespaces: { include: ['zz-no-such-namespace'] } }));
  return { table: { routes }, expected };
}

/** label-pod's Service as the forwarder addresses it with ACTIONS_NAMESPACE falco-response, intercepted by nock. */
export const ACTION_SERVICE = 'http://label-pod.falco-response.svc.cluster.local:8080';

/** Intercepts one forwarded call to the action's Service; its body, as the bytes received, lands in `bodies`. */
export function interceptAction(bodies: string[]): nock.Scope {
  const scope = nock(ACTION_SERVICE).post('/').reply(200, { status: 'done', action: 'label-pod', message: 'labelled' });
  scope.on('request', (_request: unknown, _interceptor: unknown, body: string) => bodies.push(body));
  return scope;
}

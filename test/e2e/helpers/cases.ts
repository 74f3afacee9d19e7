/**
 * What each action does to a real pod, as the e2e suite checks it. Adding an action to the e2e suite is one entry
 * here; every test file runs its checks for each entry whose folder exists under functions/.
 */
import { strict as assert } from 'assert';
import { createHash } from 'crypto';
import { existsSync } from 'fs';
import * as path from 'path';
import { api, readPod, type Cluster } from './cluster';
import { DEPLOY_NAMESPACE, ROOT } from './deploy';
import type { FunctionAnswer } from './sidekick';

/** The fixture's rule; label-pod makes a label value of it. */
const RULE = 'Terminal shell in container';

export interface ActionCase {
  /** The folder under functions/, the ServiceAccount, the bundle name. */
  readonly name: string;
  /** Parameters for the local runtime, on top of the defaults the generated Function uses. */
  readonly env: Readonly<Record<string, string>>;
  /** The reason of the Kubernetes Event the action records on the pod. */
  readonly eventReason: string;
  /** What the action answers for a pod it acted on. */
  assertAnswer(answer: FunctionAnswer, namespace: string, pod: string): void;
  /** What the API server shows after the action. */
  assertEffect(cluster: Cluster, namespace: string, pod: string): Promise<void>;
}

function assertDone(answer: FunctionAnswer, action: string, namespace: string, pod: string, message: RegExp): void {
  assert.equal(answer.status, 200, answer.text);
  assert.equal(answer.body.status, 'done', answer.text);
  assert.equal(answer.body.action, action);
  assert.deepEqual(answer.body.target, { namespace, pod });
  assert.equal(answer.body.dryRun, false);
  assert.match(answer.body.message, message);
  assert.equal(answer.body.details.eventRecorded, 'queued', answer.text);
}

const deletePod: ActionCase = {
  name: 'delete-pod',
  env: {},
  eventReason: 'FalcoResponseDeleted',
  assertAnswer(answer, namespace, pod) {
    assertDone(answer, 'delete-pod', namespace, pod, new RegExp(`^deleted the pod '${pod}' in the namespace '${namespace}' \\(grace period 1 s\\)$`));
    assert.equal(answer.body.details.owner, 'none');
  },
  async assertEffect(cluster, namespace, pod) {
    // A pod that no node runs is removed from the API at once, grace period or not.
    assert.equal(await readPod(cluster, namespace, pod), undefined, `the pod ${namespace}/${pod} still exists`);
  },
};

const labelPod: ActionCase = {
  name: 'label-pod',
  env: {},
  eventReason: 'FalcoResponseLabeled',
  assertAnswer(answer, namespace, pod) {
    assertDone(answer, 'label-pod', namespace, pod, new RegExp(`^labelled the pod '${pod}' in the namespace '${namespace}' \\(`));
  },
  async assertEffect(cluster, namespace, pod) {
    const found = await readPod(cluster, namespace, pod);
    assert.ok(found !== undefined, `the pod ${namespace}/${pod} is gone`);
    // The rule holds spaces, which no label value may: they become '-', and a hash of the original tells rules apart.
    const ruleHash = createHash('sha256').update(RULE, 'utf8').digest('hex').slice(0, 8);
    const labels = found.metadata.labels as Record<string, string>;
    // Its own labels, and the pod's own label untouched (other actions may add theirs).
    assert.deepEqual(
      { app: labels.app, flagged: labels['falco.org/flagged'], rule: labels['falco.org/rule'], priority: labels['falco.org/priority'] },
      { app: 'e2e', flagged: 'true', rule: `Terminal-shell-in-container-${ruleHash}`, priority: 'Critical' },
    );
    const annotations = found.metadata.annotations as Record<string, string>;
    assert.equal(annotations['falco.org/rule'], RULE);
    assert.equal(annotations['falco.org/priority'], 'Critical');
    assert.equal(annotations['falco.org/time'], '2023-05-25T13:44:05.478445995Z');
    assert.equal(annotations['falco.org/uuid'], '3c5d0a84-4b7e-4f44-9a21-2f0cbb4f8e11');
    assert.match(annotations['falco.org/output'], new RegExp(`^13:44:05.478445995: Critical A shell was spawned .* k8s.ns=${namespace} k8s.pod=${pod} `));
  },
};

/** The NetworkPolicy network-isolate writes with the parameters below, as the API server stores it (defaults filled). */
export const QUARANTINE_POLICY = 'e2e-quarantine';
const networkIsolate: ActionCase = {
  name: 'network-isolate',
  // Not the defaults: a policy with DNS and a forensics CIDR proves the configured rules arrive, not just a deny-all.
  env: { POLICY_NAME: QUARANTINE_POLICY, ALLOW_DNS: 'true', ALLOW_CIDRS: '192.0.2.0/24' },
  eventReason: 'FalcoResponseIsolated',
  assertAnswer(answer, namespace, pod) {
    assertDone(answer, 'network-isolate', namespace, pod, new RegExp(`^isolated the pod '${pod}' in the namespace '${namespace}': `));
  },
  async assertEffect(cluster, namespace, pod) {
    const found = await readPod(cluster, namespace, pod);
    assert.ok(found !== undefined, `the pod ${namespace}/${pod} is gone`);
    assert.equal(found.metadata.labels['falco-response.io/quarantine'], 'true');
    const policy = await api(cluster, { method: 'GET', path: `/apis/networking.k8s.io/v1/namespaces/${namespace}/networkpolicies/${QUARANTINE_POLICY}` });
    assert.equal(policy.status, 200, JSON.stringify(policy.body));
    assert.deepEqual(policy.body.metadata.labels, { 'app.kubernetes.io/managed-by': 'falco-response' });
    assert.deepEqual(policy.body.spec, {
      podSelector: { matchLabels: { 'falco-response.io/quarantine': 'true' } },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ from: [{ ipBlock: { cidr: '192.0.2.0/24' } }] }],
      egress: [
        {
          to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
          ports: [
            { protocol: 'UDP', port: 53 },
            { protocol: 'TCP', port: 53 },
          ],
        },
        { to: [{ ipBlock: { cidr: '192.0.2.0/24' } }] },
      ],
    });
  },
};

/** The evidence Secrets capture-evidence wrote about a pod, as the API server has them (admin: nothing else may read them). */
export async function evidenceSecrets(cluster: Cluster, pod: string): Promise<any[]> {
  const selector = encodeURIComponent(`falco-response.io/evidence=true,falco-response.io/pod-name=${pod}`);
  const list = await api(cluster, { method: 'GET', path: `/api/v1/namespaces/${DEPLOY_NAMESPACE}/secrets?labelSelector=${selector}` });
  assert.equal(list.status, 200, JSON.stringify(list.body));
  return list.body.items as any[];
}

/** A Secret's data, decoded. */
export const secretData = (secret: any): Record<string, string> =>
  Object.fromEntries(Object.entries(secret.data as Record<string, string>).map(([key, value]) => [key, Buffer.from(value, 'base64').toString('utf8')]));

const captureEvidence: ActionCase = {
  name: 'capture-evidence',
  // Served with a kubeconfig, which names no namespace: the generated Function sets it from the downward API.
  env: { POD_NAMESPACE: DEPLOY_NAMESPACE },
  eventReason: 'FalcoResponseEvidence',
  assertAnswer(answer, namespace, pod) {
    assertDone(answer, 'capture-evidence', namespace, pod, new RegExp(`^saved the evidence of the pod '${pod}' in the namespace '${namespace}' to the Secret '${DEPLOY_NAMESPACE}/falco-evidence-3c5d0a84-4b7e-4f44-9a21-2f0cbb4f8e11-[0-9a-f]{8}' \\(`));
  },
  async assertEffect(cluster, namespace, pod) {
    const secrets = await evidenceSecrets(cluster, pod);
    assert.equal(secrets.length, 1, `evidence Secrets of ${pod}: ${secrets.map((s) => s.metadata.name).join(', ')}`);
    const data = secretData(secrets[0]);
    assert.equal(JSON.parse(data['pod.json']).metadata.name, pod);
    assert.equal(JSON.parse(data['alert.json']).output_fields['k8s.ns.name'], namespace);
    assert.equal(JSON.parse(data['evidence.json']).pod.namespace, namespace);
  },
};

/** Every action the e2e suite knows how to check. */
export const ACTION_CASES: readonly ActionCase[] = [captureEvidence, deletePod, labelPod, networkIsolate];

/**
 * The functions that are not actions on a pod (no ServiceAccount permissions of their own to exercise on a pod):
 * cordon-node acts on a node (test/e2e/cordon-node.test.ts), delete-object on the object of a k8s_audit alert
 * (test/e2e/delete-object.test.ts); both prove it on the real API server.
 */
export const NON_ACTION_FUNCTIONS: readonly string[] = ['forwarder', 'cordon-node', 'delete-object'];

/** Whether a function's folder exists under functions/ (others land while the suite is written). */
export function functionExists(name: string): boolean {
  return existsSync(path.join(ROOT, 'functions', name));
}

/** The cases of the actions present in this tree. */
export function presentActionCases(): ActionCase[] {
  return ACTION_CASES.filter((c) => functionExists(c.name));
}

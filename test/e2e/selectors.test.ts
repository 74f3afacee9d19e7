/**
 * Every namespace and pod selector we generate, run by a real Kubernetes 1.20 API server: each is turned into a
 * `?labelSelector=` query and the real namespaces and pods are LISTed with it (helpers/selectors.ts), so the set a
 * CNI would admit is the server's answer. The callers policies come from manifests/, the quarantine policy is the one
 * the built network-isolate writes to the server. Decoys (a look-alike pod in another namespace, Falcosidekick's UI,
 * a kube-dns impostor, a quarantined pod of another namespace) must never be in a matched set.
 *
 * 1.20 sets no kubernetes.io/metadata.name on namespaces (1.21 does): the default selectors match nothing until the
 * namespaces are labelled as the README says, which this file proves first, then does.
 */
import { strict as assert } from 'assert';
import { mkdtempSync, readFileSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';
import type { DeploymentConfig } from '../../build/config';
import { discoverFunctions } from '../../build/discover';
import { kubelessObjects } from '../../build/manifests';
import { functionModel } from '../../build/model';
import { api, apiOk, createNamespace, createPod, deleteNamespaces, kubectlOk, sharedCluster, uniqueName, waitFor, type Cluster } from './helpers/cluster';
import { DEPLOY_NAMESPACE, ensureDeployed, functionFolders, manifestObjects, MANIFESTS, ROOT, serviceAccountToken, writeTokenKubeconfig } from './helpers/deploy';
import { ServedFunction, stopAllFunctions } from './helpers/runtime';
import { namespacesMatching, podsMatching, podsOfPeer, type Peer } from './helpers/selectors';
import { terminalShellAlert } from './helpers/sidekick';

const NAME_LABEL = 'kubernetes.io/metadata.name';
/** Falcosidekick's namespace in falco-response.yaml, and the labels its Helm chart gives its pods and its UI's. */
const SIDEKICK_NAMESPACE = 'falco';
const SIDEKICK_LABELS = { 'app.kubernetes.io/name': 'falcosidekick', 'app.kubernetes.io/instance': 'falco' };
const SIDEKICK_UI_LABELS = { 'app.kubernetes.io/name': 'falcosidekick-ui', 'app.kubernetes.io/instance': 'falco' };

/** A namespace of a fixed name (the generated policies name it), ready for pods; reused when it exists. */
async function namedNamespace(cluster: Cluster, name: string): Promise<void> {
  const existing = await api(cluster, { method: 'GET', path: `/api/v1/namespaces/${name}` });
  if (existing.status === 404) {
    await apiOk(cluster, { method: 'POST', path: '/api/v1/namespaces', body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } });
  } else if (existing.status !== 200) {
    throw new Error(`GET namespace ${name} answered ${existing.status}`);
  }
  await waitFor(`the default ServiceAccount and its token in the namespace '${name}'`, async () => {
    const sa = await api(cluster, { method: 'GET', path: `/api/v1/namespaces/${name}/serviceaccounts/default` });
    return sa.status === 200 && Array.isArray(sa.body.secrets) && sa.body.secrets.length > 0 ? true : undefined;
  });
}

async function namespaceLabels(cluster: Cluster, name: string): Promise<Record<string, string>> {
  return ((await apiOk(cluster, { method: 'GET', path: `/api/v1/namespaces/${name}` })).metadata.labels ?? {}) as Record<string, string>;
}

/** The callers NetworkPolicy of a function, as manifests/ ships it (both targets ship the same object). */
function callersPolicy(name: string): any {
  const policy = manifestObjects(`${name}.yaml`).find((o) => o.kind === 'NetworkPolicy' && o.metadata.name === `${name}-callers`);
  assert.ok(policy !== undefined, `manifests/kubeless/${name}.yaml holds no NetworkPolicy ${name}-callers`);
  const standalone = parseAllDocuments(readFileSync(path.join(MANIFESTS, 'standalone', `${name}.yaml`), 'utf8'))
    .map((d) => d.toJS())
    .find((o) => o?.kind === 'NetworkPolicy' && o.metadata.name === `${name}-callers`);
  assert.deepEqual(standalone, policy, `manifests/standalone/${name}.yaml ships another callers policy`);
  return policy;
}

/** The labels a function's pods get: Kubeless gives them the Function's own; the standalone Deployment its template's. */
function functionPodLabels(name: string): { kubeless: Record<string, string>; standalone: Record<string, string> } {
  const fn = manifestObjects(`${name}.yaml`).find((o) => o.kind === 'Function');
  const deployment = parseAllDocuments(readFileSync(path.join(MANIFESTS, 'standalone', `${name}.yaml`), 'utf8'))
    .map((d) => d.toJS())
    .find((o) => o?.kind === 'Deployment');
  return { kubeless: fn.metadata.labels, standalone: deployment.spec.template.metadata.labels };
}

describe('e2e: every generated namespace and pod selector, LISTed on a real Kubernetes 1.20 API server', function () {
  let cluster: Cluster;
  let scratch: string;
  /** Namespaces of unique names this file created; `falco` is created too, and removed. */
  const created: string[] = [];
  /** Pods this file put into namespaces it does not own. */
  const borrowed: { namespace: string; name: string }[] = [];
  let decoy: string;

  async function borrowPod(namespace: string, name: string, labels: Record<string, string>): Promise<void> {
    await createPod(cluster, namespace, name, labels);
    borrowed.push({ namespace, name });
  }

  before(async function () {
    cluster = sharedCluster();
    const version = await apiOk(cluster, { method: 'GET', path: '/version' });
    // The defect this file shows exists before 1.21 only; on a newer server its first test would be meaningless.
    assert.equal(`${version.major}.${String(version.minor).replace(/\D/g, '')}`, '1.20', `the e2e API server is ${version.gitVersion}`);
    await ensureDeployed(cluster);
    await namedNamespace(cluster, DEPLOY_NAMESPACE);
    await namedNamespace(cluster, SIDEKICK_NAMESPACE);
    created.push(SIDEKICK_NAMESPACE);
    decoy = await createNamespace(cluster, 'sel-decoy');
    created.push(decoy);
    scratch = mkdtempSync(path.join(tmpdir(), 'falco-response-e2e-selectors-'));

    // Falcosidekick, its UI and Falco itself in falco; a look-alike Falcosidekick and a look-alike forwarder elsewhere.
    await createPod(cluster, SIDEKICK_NAMESPACE, 'falcosidekick-e2e', SIDEKICK_LABELS);
    await createPod(cluster, SIDEKICK_NAMESPACE, 'falcosidekick-ui-e2e', SIDEKICK_UI_LABELS);
    await createPod(cluster, SIDEKICK_NAMESPACE, 'falco-e2e', { 'app.kubernetes.io/name': 'falco', 'app.kubernetes.io/instance': 'falco' });
    await createPod(cluster, decoy, 'falcosidekick-e2e', SIDEKICK_LABELS);
    await createPod(cluster, decoy, 'forwarder-e2e', { function: 'forwarder' });
    // Each function's pods as both targets label them, next to the Functions of manifests/.
    for (const name of functionFolders()) {
      const labels = functionPodLabels(name);
      await borrowPod(DEPLOY_NAMESPACE, `e2e-sel-${name}-kubeless`, labels.kubeless);
      await borrowPod(DEPLOY_NAMESPACE, `e2e-sel-${name}-standalone`, labels.standalone);
    }
  });

  after(async function () {
    await stopAllFunctions();
    if (cluster === undefined) return;
    await Promise.all(borrowed.map((p) => api(cluster, { method: 'DELETE', path: `/api/v1/namespaces/${p.namespace}/pods/${p.name}` })));
    // kube-system is the cluster's: it gets back the labels it had.
    await kubectlOk(cluster, ['label', 'namespace', 'kube-system', `${NAME_LABEL}-`, 'e2e.falco-response.io/name-']);
    await deleteNamespaces(cluster, created);
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  });

  it('turns matchLabels and every matchExpressions operator into a query the server answers as the selector means', async function () {
    // Given: the three pods of falco
    const all = ['falco/falco-e2e', 'falco/falcosidekick-e2e', 'falco/falcosidekick-ui-e2e'];
    const name = 'app.kubernetes.io/name';

    // When / Then
    assert.deepEqual(await podsMatching(cluster, SIDEKICK_NAMESPACE, {}), all);
    assert.deepEqual(await podsMatching(cluster, SIDEKICK_NAMESPACE, { matchLabels: { [name]: 'falcosidekick' } }), ['falco/falcosidekick-e2e']);
    assert.deepEqual(
      await podsMatching(cluster, SIDEKICK_NAMESPACE, { matchExpressions: [{ key: name, operator: 'In', values: ['falco', 'falcosidekick-ui'] }] }),
      ['falco/falco-e2e', 'falco/falcosidekick-ui-e2e'],
    );
    assert.deepEqual(
      await podsMatching(cluster, SIDEKICK_NAMESPACE, { matchExpressions: [{ key: name, operator: 'NotIn', values: ['falco', 'falcosidekick-ui'] }] }),
      ['falco/falcosidekick-e2e'],
    );
    assert.deepEqual(await podsMatching(cluster, SIDEKICK_NAMESPACE, { matchExpressions: [{ key: name, operator: 'Exists' }] }), all);
    assert.deepEqual(await podsMatching(cluster, SIDEKICK_NAMESPACE, { matchExpressions: [{ key: name, operator: 'DoesNotExist' }] }), []);
    assert.deepEqual(
      await podsMatching(cluster, SIDEKICK_NAMESPACE, {
        matchLabels: { 'app.kubernetes.io/instance': 'falco' },
        matchExpressions: [{ key: name, operator: 'In', values: ['falcosidekick'] }],
      }),
      ['falco/falcosidekick-e2e'],
    );
  });

  it('on 1.20 an unlabelled namespace has no kubernetes.io/metadata.name: the default selector of the callers policy admits no Falcosidekick', async function () {
    // Given: falco as Kubernetes 1.20 creates it
    assert.equal((await namespaceLabels(cluster, SIDEKICK_NAMESPACE))[NAME_LABEL], undefined);

    // When
    const peer: Peer = callersPolicy('delete-pod').spec.ingress[0].from[0];

    // Then: the selector is the default one, and it selects no namespace, so no pod (the defect)
    assert.deepEqual(peer.namespaceSelector, { matchLabels: { [NAME_LABEL]: SIDEKICK_NAMESPACE } });
    assert.deepEqual(await namespacesMatching(cluster, peer.namespaceSelector), []);
    assert.deepEqual(await podsOfPeer(cluster, DEPLOY_NAMESPACE, peer), []);
  });

  it("once falco is labelled as the README says, each function's callers policy admits exactly Falcosidekick's pod and the forwarder's, on exactly its own pods", async function () {
    // Given: the README's command for Kubernetes 1.17 to 1.20
    await kubectlOk(cluster, ['label', 'namespace', SIDEKICK_NAMESPACE, `${NAME_LABEL}=${SIDEKICK_NAMESPACE}`]);

    for (const name of functionFolders()) {
      // When
      const policy = callersPolicy(name);
      const [sidekick, ...others] = policy.spec.ingress[0].from as Peer[];

      // Then: the policy is about this function's pods, of both targets, and no other function's
      assert.equal(policy.metadata.namespace, DEPLOY_NAMESPACE);
      assert.deepEqual(await podsMatching(cluster, DEPLOY_NAMESPACE, policy.spec.podSelector), [
        `${DEPLOY_NAMESPACE}/e2e-sel-${name}-kubeless`,
        `${DEPLOY_NAMESPACE}/e2e-sel-${name}-standalone`,
      ]);
      // Falcosidekick's namespace only, and in it Falcosidekick only: not its UI, not Falco, not the look-alike
      assert.deepEqual(await namespacesMatching(cluster, sidekick.namespaceSelector!), [SIDEKICK_NAMESPACE], name);
      assert.deepEqual(await podsOfPeer(cluster, DEPLOY_NAMESPACE, sidekick), ['falco/falcosidekick-e2e'], name);
      // The forwarder's pods (of both targets) for the actions, in our namespace only: not the look-alike of the decoy
      const admitted = (await Promise.all(others.map((peer) => podsOfPeer(cluster, DEPLOY_NAMESPACE, peer)))).flat().sort();
      assert.deepEqual(
        admitted,
        name === 'forwarder' ? [] : [`${DEPLOY_NAMESPACE}/e2e-sel-forwarder-kubeless`, `${DEPLOY_NAMESPACE}/e2e-sel-forwarder-standalone`],
        name,
      );
    }
  });

  it("with callers.falcosidekick.namespaceLabels configured, the callers policy admits exactly Falcosidekick's pod, by labels falco carries instead", async function () {
    // Given: falco labelled with another label as well, and a decoy namespace carrying it with another value
    const label = 'e2e.falco-response.io/team';
    await kubectlOk(cluster, ['label', 'namespace', SIDEKICK_NAMESPACE, `${label}=security`]);
    await kubectlOk(cluster, ['label', 'namespace', decoy, `${label}=shop`]);
    const config: DeploymentConfig = {
      namespace: DEPLOY_NAMESPACE,
      runtime: 'nodejs14',
      timeoutSeconds: 30,
      resources: { requests: {}, limits: {} },
      callers: { falcosidekick: { namespace: SIDEKICK_NAMESPACE, namespaceLabels: { [label]: 'security' }, podLabels: { 'app.kubernetes.io/name': 'falcosidekick' } } },
    };
    const deletePod = discoverFunctions(ROOT).find((f) => f.name === 'delete-pod')!;
    const bundle = { name: 'delete-pod', code: '', bytes: 0, sha256: '0'.repeat(64) };

    // When
    const policy = (kubelessObjects(functionModel(deletePod.descriptor, bundle, config, ['forwarder'])) as any[]).find((o) => o.kind === 'NetworkPolicy');
    const sidekick: Peer = policy.spec.ingress[0].from[0];

    // Then
    assert.deepEqual(sidekick.namespaceSelector, { matchLabels: { [label]: 'security' } });
    assert.deepEqual(await namespacesMatching(cluster, sidekick.namespaceSelector), [SIDEKICK_NAMESPACE]);
    assert.deepEqual(await podsOfPeer(cluster, DEPLOY_NAMESPACE, sidekick), ['falco/falcosidekick-e2e']);
  });

  describe("network-isolate's quarantine policy, as the built function writes it", function () {
    let forensics: string;
    let target: string;

    /** Isolates `pod` with the built bundle as its own ServiceAccount, and returns the policy the server stores. */
    async function isolate(namespace: string, pod: string, env: Record<string, string>): Promise<any> {
      const token = await serviceAccountToken(cluster, 'network-isolate');
      const kubeconfig = writeTokenKubeconfig(cluster, path.join(scratch, `${uniqueName('ni')}.kubeconfig.json`), token);
      const fn = await ServedFunction.start('network-isolate', { env: { KUBECONFIG: kubeconfig, POLICY_NAME: 'e2e-selectors', ...env } });
      const answer = await fn.post(terminalShellAlert(namespace, pod));
      assert.equal(answer.status, 200, `${answer.text}\n${fn.logs}`);
      assert.equal(answer.body.status, 'done', answer.text);
      await fn.stop();
      return apiOk(cluster, { method: 'GET', path: `/apis/networking.k8s.io/v1/namespaces/${namespace}/networkpolicies/e2e-selectors` });
    }

    before(async function () {
      forensics = await createNamespace(cluster, 'sel-forensics');
      target = await createNamespace(cluster, 'sel-target');
      created.push(forensics, target);
      await createPod(cluster, target, 'suspect');
      await createPod(cluster, target, 'neighbour');
      await createPod(cluster, forensics, 'collector-a');
      await createPod(cluster, forensics, 'collector-b', { app: 'collector' });
      // A pod of another namespace that carries the quarantine label: another namespace's policy is not this one's.
      await createPod(cluster, decoy, 'quarantined-elsewhere', { 'falco-response.io/quarantine': 'true' });
      await createPod(cluster, decoy, 'kube-dns-impostor', { 'k8s-app': 'kube-dns' });
      await borrowPod('kube-system', 'e2e-sel-coredns', { 'k8s-app': 'kube-dns' });
      await borrowPod('kube-system', 'e2e-sel-kube-proxy', { 'k8s-app': 'kube-proxy' });
    });

    it('selects exactly the isolated pod, and, once kube-system and the allowed namespace are labelled as the README says, exactly kube-dns and that namespace', async function () {
      // Given: ALLOW_DNS and ALLOW_NAMESPACES, with the default NAMESPACE_NAME_LABEL
      const policy = await isolate(target, 'suspect', { ALLOW_DNS: 'true', ALLOW_NAMESPACES: forensics });
      const [dns, allowed] = policy.spec.egress as { to: Peer[] }[];
      assert.deepEqual(dns.to[0].namespaceSelector, { matchLabels: { [NAME_LABEL]: 'kube-system' } });
      assert.deepEqual(allowed.to, policy.spec.ingress[0].from);

      // Then: the policy holds the isolated pod only
      assert.deepEqual(await podsMatching(cluster, target, policy.spec.podSelector), [`${target}/suspect`]);
      // ... and on 1.20, before any label, its allowances select nothing: no DNS, no forensics host (the defect)
      assert.equal((await namespaceLabels(cluster, 'kube-system'))[NAME_LABEL], undefined);
      assert.deepEqual(await podsOfPeer(cluster, target, dns.to[0]), []);
      assert.deepEqual(await podsOfPeer(cluster, target, allowed.to[0]), []);

      // When: the README's commands for Kubernetes 1.17 to 1.20
      await kubectlOk(cluster, ['label', 'namespace', 'kube-system', `${NAME_LABEL}=kube-system`]);
      await kubectlOk(cluster, ['label', 'namespace', forensics, `${NAME_LABEL}=${forensics}`]);

      // Then: kube-dns of kube-system only (not kube-proxy, not the impostor), and every pod of the allowed namespace
      assert.deepEqual(await podsOfPeer(cluster, target, dns.to[0]), ['kube-system/e2e-sel-coredns']);
      assert.deepEqual(await namespacesMatching(cluster, allowed.to[0].namespaceSelector!), [forensics]);
      assert.deepEqual(await podsOfPeer(cluster, target, allowed.to[0]), [`${forensics}/collector-a`, `${forensics}/collector-b`]);
    });

    it('with NAMESPACE_NAME_LABEL set, selects kube-dns and the allowed namespace by that label, on namespaces that carry nothing else', async function () {
      // Given: namespaces labelled only with the configured label
      const label = 'e2e.falco-response.io/name';
      const other = await createNamespace(cluster, 'sel-forensics-named');
      const isolated = await createNamespace(cluster, 'sel-target-named');
      created.push(other, isolated);
      await createPod(cluster, other, 'collector');
      await createPod(cluster, isolated, 'suspect');
      await kubectlOk(cluster, ['label', 'namespace', 'kube-system', `${label}=kube-system`]);
      await kubectlOk(cluster, ['label', 'namespace', other, `${label}=${other}`]);
      assert.equal((await namespaceLabels(cluster, other))[NAME_LABEL], undefined);

      // When
      const policy = await isolate(isolated, 'suspect', { ALLOW_DNS: 'true', ALLOW_NAMESPACES: other, NAMESPACE_NAME_LABEL: label });

      // Then
      const [dns, allowed] = policy.spec.egress as { to: Peer[] }[];
      assert.deepEqual(dns.to[0].namespaceSelector, { matchLabels: { [label]: 'kube-system' } });
      assert.deepEqual(await podsMatching(cluster, isolated, policy.spec.podSelector), [`${isolated}/suspect`]);
      assert.deepEqual(await podsOfPeer(cluster, isolated, dns.to[0]), ['kube-system/e2e-sel-coredns']);
      assert.deepEqual(await podsOfPeer(cluster, isolated, allowed.to[0]), [`${other}/collector`]);
      assert.deepEqual(await podsOfPeer(cluster, isolated, policy.spec.ingress[0].from[0]), [`${other}/collector`]);
    });
  });
});

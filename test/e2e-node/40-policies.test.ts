/**
 * The generated NetworkPolicies select the real pods and namespaces they are meant to: this cluster has no CNI that
 * enforces NetworkPolicies (the bridge plugin stores nothing of them), so what is proven is the selection, by the API
 * server's own label selectors over the running pods, not the packets.
 */
import { strict as assert } from 'assert';
import { deployedOnce, FUNCTIONS, FUNCTIONS_NAMESPACE, NODE_IMAGE, readyPods, SIDEKICK_LABELS, WORKLOAD_NAMESPACE, type Deployed } from './helpers/deploy';
import { getJson, kubectlOk, selected, waitFor } from './helpers/node';

const ELSEWHERE = 'e2e-elsewhere';

/** Every pod a NetworkPolicy's ingress rule admits, as `<namespace>/<pod>`: the union of its peers' selections. */
async function admittedBy(policy: any): Promise<string[]> {
  const admitted = new Set<string>();
  for (const rule of policy.spec.ingress ?? []) {
    for (const peer of rule.from ?? []) {
      assert.equal(peer.ipBlock, undefined, `${policy.metadata.name}: an ipBlock peer admits addresses, not pods`);
      const namespaces = peer.namespaceSelector === undefined ? [policy.metadata.namespace] : await selected('namespaces', peer.namespaceSelector);
      for (const ns of namespaces) for (const p of await selected('pods', peer.podSelector ?? {}, ns)) admitted.add(p);
    }
  }
  return [...admitted].sort();
}

describe('node: the NetworkPolicies select the intended pods (selection only: no enforcing CNI here)', function () {
  let d: Deployed;
  let decoy: string;
  before(async function () {
    this.timeout(600000);
    d = await deployedOnce();
    // A pod labelled exactly as Falcosidekick's, in another namespace: a policy that admitted it would admit any
    // workload that copies the labels.
    await kubectlOk(['apply', '-f', '-'], JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ELSEWHERE, labels: { 'kubernetes.io/metadata.name': ELSEWHERE } } },
      ],
    }));
    await waitFor(`the default ServiceAccount of ${ELSEWHERE}`, async () => ((await getJson(['serviceaccount', 'default', '-n', ELSEWHERE])).secrets?.length > 0 ? true : undefined), 60000);
    await kubectlOk(['apply', '-f', '-'], JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'lookalike', namespace: ELSEWHERE, labels: SIDEKICK_LABELS },
      spec: {
        terminationGracePeriodSeconds: 1,
        securityContext: { runAsNonRoot: true, runAsUser: 1000 },
        containers: [{ name: 'c', image: NODE_IMAGE, imagePullPolicy: 'IfNotPresent', command: ['node', '-e', 'setInterval(() => {}, 1e9)'] }],
      },
    }));
    decoy = `${ELSEWHERE}/lookalike`;
  });

  for (const fn of FUNCTIONS) {
    it(`${fn}-callers selects the ${fn} pods and admits Falcosidekick${fn === 'forwarder' ? '' : ' and the forwarder'}, nobody else`, async () => {
      // Given the policy as applied, and the running pods
      const policy = await getJson(['networkpolicy', `${fn}-callers`, '-n', FUNCTIONS_NAMESPACE]);
      const own = (await readyPods(FUNCTIONS_NAMESPACE, `function=${fn}`)).map((p) => `${FUNCTIONS_NAMESPACE}/${p.metadata.name}`).sort();
      const forwarders = (await readyPods(FUNCTIONS_NAMESPACE, 'function=forwarder')).map((p) => `${FUNCTIONS_NAMESPACE}/${p.metadata.name}`);
      // When the API server evaluates its selectors
      const targets = await selected('pods', policy.spec.podSelector, FUNCTIONS_NAMESPACE);
      const admitted = await admittedBy(policy);
      // Then it protects exactly the function's pods, on its port, and admits the callers only
      assert.deepEqual(targets, own);
      assert.deepEqual(policy.spec.policyTypes, ['Ingress']);
      assert.deepEqual(policy.spec.ingress.map((r: any) => r.ports), [[{ port: 8080, protocol: 'TCP' }]]);
      const expected = [`falco/${d.clientPod}`, ...(fn === 'forwarder' ? [] : forwarders)].sort();
      assert.deepEqual(admitted, expected);
      assert.ok(!admitted.includes(decoy), `${fn}-callers admits ${decoy}`);
    });
  }

  it('the quarantine policy selects the isolated pod and not its sibling', async () => {
    // Given the workload, one of whose pods an alert isolated (20-alerts), and a pod labelled like Falcosidekick
    const policy = await getJson(['networkpolicy', 'falco-response-quarantine', '-n', WORKLOAD_NAMESPACE]);
    const all = (await readyPods(WORKLOAD_NAMESPACE, 'app=web')).map((p) => ({ name: `${WORKLOAD_NAMESPACE}/${p.metadata.name}`, quarantined: p.metadata.labels['falco-response.io/quarantine'] === 'true' }));
    const isolated = all.filter((p) => p.quarantined).map((p) => p.name).sort();
    assert.ok(isolated.length > 0 && isolated.length < all.length, `expected isolated and free pods of the workload: ${JSON.stringify(all)}`);
    // When the API server evaluates its selector
    const targets = await selected('pods', policy.spec.podSelector, WORKLOAD_NAMESPACE);
    // Then it selects the isolated pods only, and denies all traffic both ways (no rule admits any)
    assert.deepEqual(targets, isolated);
    assert.deepEqual(policy.spec.policyTypes, ['Ingress', 'Egress']);
    assert.equal(policy.spec.ingress, undefined);
    assert.equal(policy.spec.egress, undefined);
  });
});

/**
 * Every function of manifests/standalone/, applied as the README says, runs as a Ready pod on a real kubelet with the
 * hardened security context, probes and limits the file declares, and reaches the API server the in-cluster way only.
 */
import { strict as assert } from 'assert';
import { readFileSync } from 'fs';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';
import { deployedOnce, FUNCTIONS, FUNCTIONS_NAMESPACE, readyPods, REPO } from './helpers/deploy';
import { inspect } from './helpers/inspect';
import { getJson, waitFor } from './helpers/node';

/** The Deployment of a function, as manifests/standalone/<function>.yaml writes it. */
export function manifestDeployment(fn: string): any {
  const text = readFileSync(path.join(REPO, 'manifests', 'standalone', `${fn}.yaml`), 'utf8');
  const found = parseAllDocuments(text).map((d) => d.toJS()).find((o) => o?.kind === 'Deployment');
  if (found === undefined) throw new Error(`manifests/standalone/${fn}.yaml has no Deployment`);
  return found;
}

/** Every key the file sets is in the live object with the same value (the API server adds its defaults). */
function assertContains(live: unknown, expected: unknown, where: string): void {
  if (expected !== null && typeof expected === 'object' && !Array.isArray(expected)) {
    assert.ok(live !== null && typeof live === 'object', `${where}: missing in the running pod`);
    for (const [k, v] of Object.entries(expected)) assertContains((live as Record<string, unknown>)[k], v, `${where}.${k}`);
  } else {
    assert.deepEqual(live, expected, `${where}: the running pod has ${JSON.stringify(live)}, the manifest ${JSON.stringify(expected)}`);
  }
}

function bytesOf(quantity: string): number {
  const m = /^(\d+)(Mi|Gi)$/.exec(quantity);
  if (m === null) throw new Error(`unexpected memory quantity ${quantity}`);
  return Number(m[1]) * (m[2] === 'Mi' ? 1024 * 1024 : 1024 * 1024 * 1024);
}

describe('node: the functions run as pods', function () {
  let kubernetesIp: string;
  before(async function () {
    this.timeout(600000);
    await deployedOnce();
    kubernetesIp = (await getJson(['service', 'kubernetes', '-n', 'default'])).spec.clusterIP;
  });

  for (const fn of FUNCTIONS) {
    describe(fn, () => {
      it('is Ready with the security context, probes and limits of its manifest', async () => {
        // Given the Deployment the file declares
        const spec = manifestDeployment(fn).spec;
        const replicas: number = spec.replicas ?? 1;
        // When its pods run
        const pods = await readyPods(FUNCTIONS_NAMESPACE, `function=${fn}`);
        // Then every replica is Ready and runs what the file says
        assert.equal(pods.length, replicas, `${fn}: ${pods.length} Ready pods, the manifest asks for ${replicas}`);
        const want = spec.template.spec;
        for (const pod of pods) {
          const where = `${fn} pod ${pod.metadata.name}`;
          assertContains(pod.spec.securityContext, want.securityContext, `${where} securityContext`);
          const [live] = pod.spec.containers;
          const [declared] = want.containers;
          for (const key of ['image', 'securityContext', 'resources', 'livenessProbe', 'readinessProbe']) {
            assertContains(live[key], declared[key], `${where} ${key}`);
          }
          assert.equal(pod.spec.automountServiceAccountToken, want.automountServiceAccountToken, `${where} automountServiceAccountToken`);
        }
      });

      it('has a PodDisruptionBudget over its pods that allows one eviction at a time', async () => {
        // Given the function's budget, as the API server tracks it against the running pods
        const replicas: number = manifestDeployment(fn).spec.replicas;
        const budget = await waitFor(`the PodDisruptionBudget ${fn} observed`, async () => {
          const b = await getJson(['poddisruptionbudget', fn, '-n', FUNCTIONS_NAMESPACE]);
          return b.status?.observedGeneration === b.metadata.generation && b.status.currentHealthy === replicas ? b : undefined;
        }, 60000);
        // Then it covers every replica and lets exactly one go
        assert.deepEqual(
          { maxUnavailable: budget.spec.maxUnavailable, expectedPods: budget.status.expectedPods, disruptionsAllowed: budget.status.disruptionsAllowed },
          { maxUnavailable: 1, expectedPods: replicas, disruptionsAllowed: 1 },
        );
      });

      it('runs the pinned Node as uid 1000 on a read-only root, with no capability, seccomp on and the kubelet enforcing its limits', async () => {
        // Given one of its running pods
        const [pod] = await readyPods(FUNCTIONS_NAMESPACE, `function=${fn}`);
        const [declared] = manifestDeployment(fn).spec.template.spec.containers;
        // When a process in it looks at itself
        const seen = await inspect(FUNCTIONS_NAMESPACE, pod.metadata.name);
        // Then
        assert.deepEqual(
          { uid: seen.uid, gid: seen.gid, rootfs: seen.rootfs, capEff: seen.capEff, noNewPrivs: seen.noNewPrivs, seccomp: seen.seccomp },
          { uid: 1000, gid: 1000, rootfs: 'EROFS', capEff: '0000000000000000', noNewPrivs: '1', seccomp: '2' },
        );
        assert.equal(seen.version, `v${/^node:(\d+\.\d+\.\d+)/.exec(declared.image)![1]}`, 'the Node the image pins');
        assert.equal(Number(seen.memoryLimit), bytesOf(declared.resources.limits.memory), 'the memory cgroup limit');
        const cpu = /^(\d+)m$/.exec(declared.resources.limits.cpu);
        assert.ok(cpu !== null, `unexpected CPU limit ${declared.resources.limits.cpu}`);
        assert.equal(Number(seen.cpuQuota) / Number(seen.cpuPeriod), Number(cpu[1]) / 1000, 'the CPU cgroup quota');
      });

      it('reaches the API server the in-cluster way only', async () => {
        // Given one of its running pods
        const [pod] = await readyPods(FUNCTIONS_NAMESPACE, `function=${fn}`);
        const wantsToken = manifestDeployment(fn).spec.template.spec.automountServiceAccountToken !== false;
        // When it looks at what it was given
        const seen = await inspect(FUNCTIONS_NAMESPACE, pod.metadata.name);
        // Then: the kubernetes Service's ClusterIP (kube-proxy's), the token and CA the kubelet mounts, no kubeconfig
        assert.deepEqual(
          { serviceHost: seen.serviceHost, servicePort: seen.servicePort, kubeconfig: seen.kubeconfig, token: seen.token, ca: seen.ca },
          { serviceHost: kubernetesIp, servicePort: '443', kubeconfig: null, token: wantsToken, ca: wantsToken },
        );
      });
    });
  }
});

/**
 * Every function of manifests/standalone/, applied as the README says, runs as a Ready pod on a real kubelet with the
 * hardened security context, probes and limits the file declares, and reaches the API server the in-cluster way only.
 */
import { strict as assert } from 'assert';
import { readFileSync } from 'fs';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';
import { deployedOnce, FUNCTIONS, FUNCTIONS_NAMESPACE, readyPods, REPO } from './helpers/deploy';
import { getJson, kubectlOk } from './helpers/node';

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

/** What a process in the container sees of itself, through the Node the image ships (it has no shell). */
const INSPECT = `
const fs = require('fs');
const status = fs.readFileSync('/proc/self/status', 'utf8');
const field = (k) => (status.match(new RegExp('^' + k + ':\\\\s*(.*)$', 'm')) || [])[1];
let rootfs = 'writable';
try { fs.writeFileSync('/probe', 'x'); } catch (e) { rootfs = e.code; }
const read = (f) => { try { return fs.readFileSync(f, 'utf8').trim(); } catch (e) { return e.code; } };
console.log(JSON.stringify({
  uid: process.getuid(), gid: process.getgid(), version: process.version, rootfs,
  capEff: field('CapEff'), noNewPrivs: field('NoNewPrivs'), seccomp: field('Seccomp'),
  memoryLimit: read('/sys/fs/cgroup/memory/memory.limit_in_bytes'), cpuQuota: read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us'),
  cpuPeriod: read('/sys/fs/cgroup/cpu/cpu.cfs_period_us'),
  serviceHost: process.env.KUBERNETES_SERVICE_HOST, servicePort: process.env.KUBERNETES_SERVICE_PORT,
  kubeconfig: process.env.KUBECONFIG === undefined ? null : process.env.KUBECONFIG,
  token: fs.existsSync('/var/run/secrets/kubernetes.io/serviceaccount/token'),
  ca: fs.existsSync('/var/run/secrets/kubernetes.io/serviceaccount/ca.crt'),
}));
`;

export async function inspect(namespace: string, pod: string): Promise<any> {
  return JSON.parse(await kubectlOk(['exec', '-n', namespace, pod, '--', 'node', '-e', INSPECT]));
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

      it('runs as uid 1000 on a read-only root, with no capability, seccomp on and the kubelet enforcing its limits', async () => {
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

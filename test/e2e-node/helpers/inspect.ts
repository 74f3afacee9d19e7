/** What a process in a function's container sees of itself, through the Node the image ships (it has no shell). */
import { kubectlOk } from './node';

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


/** The Node version a pod's container runs. */
export async function inspectVersion(namespace: string, pod: string): Promise<string> {
  return (await inspect(namespace, pod)).version as string;
}

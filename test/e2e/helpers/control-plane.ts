/**
 * Faults of the control plane itself: pausing the shared API server (SIGSTOP, always resumed), and a second,
 * private cluster whose API server is killed and started again with the very same command line.
 */
import { execFile, execFileSync, spawn } from 'child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { api, clusterAt, waitFor, type Cluster } from './cluster';
import { ROOT } from './deploy';

const CLUSTER_SCRIPTS = path.join(ROOT, 'test', 'e2e', 'cluster');

function cmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((arg) => arg !== '');
  } catch {
    return [];
  }
}

/** The kube-apiserver pid of a cluster, from its `pids` file, checked against its command line (pids get reused). */
export function apiserverPid(cluster: Cluster): number {
  const pids = readFileSync(path.join(cluster.state, 'pids'), 'utf8').split('\n').filter((line) => line.trim() !== '').map(Number);
  const pid = pids.find((p) => {
    const args = cmdline(p);
    return args.length > 0 && path.basename(args[0]) === 'kube-apiserver' && args.some((arg) => arg.includes(cluster.state));
  });
  if (pid === undefined) throw new Error(`no running kube-apiserver among the pids of ${cluster.state}`);
  return pid;
}

const paused = new Set<number>();

/** SIGSTOP: the API server keeps its port open (the kernel accepts connections) but answers nothing. */
export function pauseApiserver(cluster: Cluster): number {
  const pid = apiserverPid(cluster);
  paused.add(pid);
  process.kill(pid, 'SIGSTOP');
  return pid;
}

/** SIGCONT for every API server this process paused; safe to call any number of times. */
export function resumeApiservers(): void {
  for (const pid of paused) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // already gone
    }
  }
  paused.clear();
}

// Never leave the shared cluster frozen, whatever happens to the test run.
process.on('exit', resumeApiservers);

/** Waits until the API server answers /readyz again. */
export async function waitReady(cluster: Cluster, timeoutMs = 30000): Promise<void> {
  await waitFor(
    `${cluster.server}/readyz`,
    async () => {
      try {
        const answer = await api(cluster, { method: 'GET', path: '/readyz' }, cluster.adminToken, 2000);
        return answer.status === 200 && answer.body === 'ok' ? true : undefined;
      } catch {
        return undefined;
      }
    },
    timeoutMs,
    200,
  );
}

function run(script: string, state: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('bash', [path.join(CLUSTER_SCRIPTS, script), state], { timeout: 120000 }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`${script} ${state} failed: ${error.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
}

/** State dirs of private clusters not stopped yet. */
const privateStates = new Set<string>();

// The daemons of up.sh outlive this process (setsid): stop them even if mocha exits without its after hooks.
process.on('exit', () => {
  for (const state of privateStates) {
    try {
      execFileSync('bash', [path.join(CLUSTER_SCRIPTS, 'down.sh'), state], { stdio: 'ignore', timeout: 20000 });
      rmSync(state, { recursive: true, force: true });
    } catch {
      // nothing more can be done on the way out
    }
  }
});

/** A cluster of its own (up.sh in a fresh state dir), to be stopped with `stop()`. */
export class PrivateCluster {
  private constructor(
    readonly state: string,
    readonly cluster: Cluster,
  ) {}

  static async start(): Promise<PrivateCluster> {
    const state = mkdtempSync(path.join(tmpdir(), 'falco-response-e2e-private-'));
    privateStates.add(state);
    try {
      await run('up.sh', state);
    } catch (error) {
      privateStates.delete(state);
      rmSync(state, { recursive: true, force: true });
      throw error;
    }
    return new PrivateCluster(state, clusterAt(state));
  }

  /** Kills the API server (SIGKILL: a crash, no graceful goodbye to open connections) and waits until it is gone. */
  async killApiserver(): Promise<string[]> {
    const pid = apiserverPid(this.cluster);
    const args = cmdline(pid);
    process.kill(pid, 'SIGKILL');
    // A zombie (nobody reaps the daemon) has an empty command line too.
    await waitFor('the kube-apiserver to exit', () => Promise.resolve(cmdline(pid).length === 0 ? true : undefined), 15000);
    return args;
  }

  /** Starts the API server again with the same command line (same port, certificates, etcd) and records its pid. */
  async restartApiserver(args: readonly string[]): Promise<void> {
    const log = openSync(path.join(this.state, 'apiserver.log'), 'a');
    const child = spawn(args[0], args.slice(1), { detached: true, stdio: ['ignore', log, log] });
    closeSync(log);
    child.unref();
    // down.sh stops exactly the pids listed: the new API server takes the old one's line.
    const pids = readFileSync(path.join(this.state, 'pids'), 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '' && cmdline(Number(line)).length > 0);
    writeFileSync(path.join(this.state, 'pids'), `${[...pids, String(child.pid)].join('\n')}\n`);
    await waitReady(this.cluster, 60000);
  }

  async stop(): Promise<void> {
    await run('down.sh', this.state);
    privateStates.delete(this.state);
    rmSync(this.state, { recursive: true, force: true });
  }
}

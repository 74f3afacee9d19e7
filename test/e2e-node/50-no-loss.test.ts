/**
 * No alert is lost while the functions' pods are replaced: Falcosidekick sends one alert at a time, with no retry,
 * through `kubectl rollout restart` of the forwarder and of each action, and through the eviction of one function pod
 * (what `kubectl drain` does, through the eviction API). Every alert must be answered 200 and carried out. What makes
 * it so: two replicas, a PodDisruptionBudget, readiness that drops on SIGTERM and a drain of the calls in flight
 * while the endpoint leaves the Services (the runtime's SHUTDOWN_DELAY_SECONDS).
 */
import { strict as assert } from 'assert';
import { terminalShellAlert } from '../e2e/helpers/sidekick';
import {
  deployedOnce,
  FUNCTIONS_NAMESPACE,
  NODE_IMAGE,
  deploymentEnv,
  readyPods,
  resultsOf,
  rolledOut,
  sendFromClient,
  setDeploymentEnv,
  settled,
  withValues,
  WORKLOAD_NAMESPACE,
  type Deployed,
  type SidekickAnswer,
} from './helpers/deploy';
import { kubectl, kubectlOk, waitFor } from './helpers/node';

interface Sent {
  readonly answer: SidekickAnswer;
  /** Why it does not count as answered and carried out; undefined when it does. */
  readonly problem: string | undefined;
}

/**
 * Sends alerts one after the other until `done` resolves (and at least one more after it), checking each one as it
 * comes back; resolves with every alert sent.
 */
async function sendThrough(done: Promise<unknown>, next: () => Promise<Sent>): Promise<Sent[]> {
  let finished = false;
  let failure: unknown;
  void done.then(
    () => (finished = true),
    (error: unknown) => {
      failure = error;
      finished = true;
    },
  );
  const sent: Sent[] = [];
  for (;;) {
    const wasFinished = finished;
    sent.push(await next());
    if (wasFinished) break;
  }
  if (failure instanceof Error) throw failure;
  if (failure !== undefined) throw new Error('the replacement failed');
  return sent;
}

function report(what: string, sent: Sent[], startedMs: number): void {
  const ms = sent.map((s) => s.answer.ms).sort((a, b) => a - b);
  const lost = sent.filter((s) => s.problem !== undefined);
  console.log(
    `      ${what}: ${sent.length} alerts in ${((Date.now() - startedMs) / 1000).toFixed(1)} s, ${lost.length} not answered 200 and carried out; ` +
      `answer median ${ms[Math.floor(ms.length / 2)]} ms, max ${ms[ms.length - 1]} ms`,
  );
  assert.ok(sent.length > 0, `${what}: no alert sent`);
  assert.deepEqual(
    lost.slice(0, 5).map((s) => s.problem),
    [],
    `${what}: ${lost.length} of ${sent.length} alerts lost (the first ones shown)`,
  );
}

/** The actions the default table routes a terminal shell to. */
const ACTIONS = ['label-pod', 'network-isolate'];

describe('node: no alert lost while the function pods are replaced', function () {
  this.timeout(600000);
  let d: Deployed;
  let target: string;

  /** One alert through the forwarder about a running pod: 200, label-pod and network-isolate done. */
  const throughForwarder = async (): Promise<Sent> => {
    const answer = await sendFromClient(d, terminalShellAlert(WORKLOAD_NAMESPACE, target));
    if (answer.status !== 200) return { answer, problem: `answered ${answer.status ?? answer.error}: ${answer.body ?? ''}` };
    const results = resultsOf(answer);
    const notDone = ACTIONS.filter((a) => results[a]?.status !== 'done' || results[a]?.httpStatus !== 200);
    return { answer, problem: notDone.length === 0 ? undefined : `not carried out by ${notDone.join(', ')}: ${answer.body ?? ''}` };
  };

  /** The actions' env as applied, put back after: SETTLED_SECONDS is 0 for this file. */
  const appliedEnv = new Map<string, any[]>();

  before(async function () {
    d = await deployedOnce();
    // Every alert here is alike (one pod, one rule): with the settled memory, all but the first of each 10 s would be
    // answered by the forwarder from memory and never reach the actions being replaced. Off, each one goes through.
    for (const fn of ACTIONS) {
      const env = await deploymentEnv(fn);
      appliedEnv.set(fn, env);
      await setDeploymentEnv(fn, withValues(env, { SETTLED_SECONDS: '0' }));
    }
    const [pod] = await readyPods(WORKLOAD_NAMESPACE, 'app=web');
    target = pod.metadata.name;
    // Warm: the first alert after a change may find a Service not yet programmed (not a loss: nothing is replaced).
    await waitFor('a first answer', async () => ((await throughForwarder()).problem === undefined ? true : undefined), 30000);
  });

  after(async function () {
    for (const [fn, env] of appliedEnv) await setDeploymentEnv(fn, env);
  });

  for (const fn of ['forwarder', ...ACTIONS]) {
    it(`through kubectl rollout restart of ${fn}`, async () => {
      // Given alerts flowing one at a time
      const started = Date.now();
      // When the Deployment is restarted, until every old pod is gone
      const restart = kubectlOk(['-n', FUNCTIONS_NAMESPACE, 'rollout', 'restart', `deployment/${fn}`]).then(() => settled(fn));
      const sent = await sendThrough(restart, throughForwarder);
      // Then every alert was answered 200 and carried out
      report(`rollout restart of ${fn}`, sent, started);
    });
  }

  it('through kubectl rollout restart of delete-pod, each alert deleting a running pod', async () => {
    // Given victims: a Deployment whose pods the alerts delete, one each, straight to delete-pod as Falcosidekick
    // configured with kubeless.function=delete-pod calls it
    const labels = { app: 'victim' };
    await kubectlOk(['apply', '-f', '-'], JSON.stringify({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'victim', namespace: WORKLOAD_NAMESPACE },
      spec: {
        replicas: 3,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            terminationGracePeriodSeconds: 1,
            automountServiceAccountToken: false,
            securityContext: { runAsNonRoot: true, runAsUser: 1000 },
            containers: [{ name: 'c', image: NODE_IMAGE, imagePullPolicy: 'IfNotPresent', command: ['node', '-e', 'setInterval(() => {}, 1e9)'],
              resources: { requests: { cpu: '5m', memory: '16Mi' }, limits: { memory: '64Mi' } } }],
          },
        },
      },
    }));
    await rolledOut(WORKLOAD_NAMESPACE, 'victim');
    const url = `http://delete-pod.${FUNCTIONS_NAMESPACE}.svc.cluster.local:8080`;
    const targeted = new Set<string>();
    const deleteOne = async (): Promise<Sent> => {
      const victim = await waitFor('a running victim not yet targeted', async () => {
        const pods = await readyPods(WORKLOAD_NAMESPACE, 'app=victim');
        return pods.map((p) => p.metadata.name as string).find((n) => !targeted.has(n));
      }, 60000, 100);
      targeted.add(victim);
      const answer = await sendFromClient(d, terminalShellAlert(WORKLOAD_NAMESPACE, victim), url);
      if (answer.status !== 200) return { answer, problem: `answered ${answer.status ?? answer.error} for ${victim}: ${answer.body ?? ''}` };
      const body = JSON.parse(answer.body ?? 'null');
      if (body?.status !== 'done') return { answer, problem: `delete-pod said ${body?.status} for ${victim}: ${answer.body ?? ''}` };
      const after = await kubectl(['get', 'pod', victim, '-n', WORKLOAD_NAMESPACE, '-o', 'json']);
      const deleted = after.code !== 0 || JSON.parse(after.stdout).metadata.deletionTimestamp !== undefined;
      return { answer, problem: deleted ? undefined : `${victim} answered done but not deleted` };
    };
    const started = Date.now();
    // When delete-pod is restarted while alerts flow
    const restart = kubectlOk(['-n', FUNCTIONS_NAMESPACE, 'rollout', 'restart', 'deployment/delete-pod']).then(() => settled('delete-pod'));
    const sent = await sendThrough(restart, deleteOne);
    // Then every alert was answered 200 and its pod deleted
    report('rollout restart of delete-pod', sent, started);
    await kubectlOk(['delete', 'deployment', 'victim', '-n', WORKLOAD_NAMESPACE, '--wait=false']);
  });

  for (const fn of ['forwarder', 'label-pod']) {
    it(`through the eviction of a ${fn} pod, the budget refusing a second eviction meanwhile`, async () => {
      // Given alerts flowing through the forwarder, and the function's two Ready pods
      const [first, second] = await readyPods(FUNCTIONS_NAMESPACE, `function=${fn}`);
      const evict = (pod: string) =>
        kubectl(['create', '--raw', `/api/v1/namespaces/${FUNCTIONS_NAMESPACE}/pods/${pod}/eviction`, '-f', '-'], JSON.stringify({
          apiVersion: 'policy/v1beta1',
          kind: 'Eviction',
          metadata: { name: pod, namespace: FUNCTIONS_NAMESPACE },
        }));
      const started = Date.now();
      let refused = '';
      // When one pod is evicted (as kubectl drain does), and the other right after, until the replacement is Ready
      const eviction = (async () => {
        // The budget's status may still be catching up with the previous replacement: retry a refusal, bounded.
        await waitFor(`the eviction of ${first.metadata.name}`, async () => {
          const one = await evict(first.metadata.name);
          if (one.code !== 0) throw new Error(one.stderr.trim());
          return true;
        }, 60000, 500);
        const two = await evict(second.metadata.name);
        refused = `${two.code} ${two.stderr}`;
        assert.notEqual(two.code, 0, `the PodDisruptionBudget let the second ${fn} pod be evicted while the first was going`);
        await settled(fn);
      })();
      const sent = await sendThrough(eviction, throughForwarder);
      // Then the budget refused the second eviction (429), and every alert was answered 200 and carried out
      assert.match(refused, /Cannot evict pod as it would violate the pod's disruption budget|TooManyRequests|429/, refused);
      report(`eviction of a ${fn} pod`, sent, started);
    });
  }
});

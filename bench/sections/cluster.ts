/**
 * Section 3: what an alert costs against a REAL API server (test/e2e/cluster/up.sh: kube-apiserver 1.20 + etcd on
 * loopback), per pod action: the bundle served by the local runtime in its own process and sent Falcosidekick's
 * POSTs, one at a time and with several in flight. The baseline is the physical floor: exactly the API calls the
 * action makes for one alert (recorded from the action itself), replayed by a bare keep-alive HTTPS client in the
 * bench process. Each alert acts on its own fresh pod. Blocks of ours and of the floor alternate (ours first in odd
 * rounds, the floor first in even ones), so a drift of the machine or of etcd weighs on both alike.
 */
import { randomUUID } from 'crypto';
import type { PodAction } from '../../lib/action';
import { KubeClient, type Kube, type KubeRequest } from '../../lib/kube/client';
import { kubeconfigConnection } from '../../lib/kube/connection';
import { shortHash } from '../../lib/labels';
import { jsonLogger } from '../../lib/log';
import { podActionHandler } from '../../lib/runner';
import { terminalShellAlert } from '../lib/alerts';
import { kindOf, type Artifacts } from '../lib/artifacts';
import { kubelessContext, kubelessEvent } from '../../test/helpers/fixtures';
import { createNamespace, createPods, withCluster } from '../lib/cluster';
import type { FloorClient } from '../lib/https-client';
import type { Figure, SectionBody } from '../lib/report';
import { SidekickClient, startRuntimeProcess } from '../lib/runtime-process';
import { msSince, round, roundSummary, summarize } from '../lib/stats';

const WARM_UP_ALERTS = 3;

export interface ClusterPlan {
  readonly rounds: number;
  readonly sequentialPerRound: number;
  readonly concurrentPerRound: number;
  readonly inFlight: number;
}

interface RecordedCall {
  readonly method: string;
  readonly path: string;
  readonly body: string | undefined;
  readonly contentType: string;
  ok: boolean;
}

interface Block {
  readonly latencies: number[];
  readonly seconds: number;
}

/** Runs `one` over the items with at most `inFlight` at a time; each call returns its own latency in ms. */
async function inBlock<T>(items: readonly T[], inFlight: number, one: (item: T) => Promise<number>): Promise<Block> {
  const latencies: number[] = [];
  let next = 0;
  const start = process.hrtime.bigint();
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++];
      latencies.push(await one(item));
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, items.length) }, worker));
  return { latencies, seconds: msSince(start) / 1000 };
}

function replace(text: string, swaps: readonly (readonly [string, string])[]): string {
  return swaps.reduce((t, [from, to]) => t.split(from).join(to), text);
}

export async function clusterSection(artifacts: Artifacts, plan: ClusterPlan, progress: (line: string) => void): Promise<SectionBody> {
  const actions = artifacts.functions.filter((f) => kindOf(f) === 'pod-action').map((f) => f.descriptor as PodAction);
  const ran = await withCluster('cluster', progress, async (cluster) => {
    const namespace = await createNamespace(cluster.floor, `bench-${Date.now().toString(36)}`);
    // The own namespace of an action that keeps what it writes there (capture-evidence's Secrets): not the pods' one,
    // which as its own would be protected.
    const ownNamespace = await createNamespace(cluster.floor, `bench-own-${Date.now().toString(36)}`);
    const figures: Figure[] = [];
    const details: Record<string, unknown> = {};
    for (const action of actions) {
      const result = await benchAction({ action, floor: cluster.floor, namespace, ownNamespace, kubeconfig: cluster.kubeconfig, artifacts, plan, progress, logDir: cluster.state });
      figures.push(...result.figures);
      details[action.name] = result.details;
    }
    return { figures, details };
  });
  if (ran.kind === 'skipped') return { status: 'skipped', reason: ran.reason, method: '', figures: [] };
  return {
    status: 'done',
    method:
      `kube-apiserver ${'1.20.2'} + etcd on 127.0.0.1 over TLS, bearer token; per action ${plan.rounds} rounds of ${plan.sequentialPerRound} alerts one at a time ` +
      `and ${plan.concurrentPerRound} with ${plan.inFlight} in flight, ours and the floor alternating; one fresh pod per alert; ` +
      `ours = Falcosidekick POST -> local runtime (current Node) -> answer; floor = the same API calls from a bare keep-alive client`,
    ...ran.value,
  };
}

async function benchAction(options: {
  action: PodAction;
  floor: FloorClient;
  namespace: string;
  ownNamespace: string;
  kubeconfig: string;
  artifacts: Artifacts;
  plan: ClusterPlan;
  progress: (line: string) => void;
  logDir: string;
}): Promise<{ figures: Figure[]; details: unknown }> {
  const { action, floor, namespace, plan, progress } = options;
  const name = action.name;
  const podName = (side: string, i: number) => `${name}-${side}${String(i).padStart(4, '0')}`;
  const perSide = WARM_UP_ALERTS + plan.rounds * (plan.sequentialPerRound + plan.concurrentPerRound);
  const ours = Array.from({ length: perSide }, (_, i) => podName('o', i));
  const theirs = Array.from({ length: perSide }, (_, i) => podName('f', i));
  const probes = [podName('p', 1), podName('p', 2)];
  progress(`cluster: ${name}: creating ${2 * perSide + probes.length} pods`);
  const uids = await createPods(floor, namespace, [...probes, ...ours, ...theirs]);

  // The calls of one alert, recorded from the action itself in this process. The first probe alert may set the
  // namespace up (network-isolate creates its policy); the second one's calls are what every later alert makes.
  const client = new KubeClient(kubeconfigConnection(options.kubeconfig));
  let calls: RecordedCall[] = [];
  const recording: Kube = {
    async request<T>(request: KubeRequest, deadline: number): Promise<T> {
      const call: RecordedCall = {
        method: request.method,
        path: request.path,
        body: request.body === undefined ? undefined : JSON.stringify(request.body),
        contentType: request.contentType ?? 'application/json',
        ok: true,
      };
      calls.push(call);
      try {
        return await client.request<T>(request, deadline);
      } catch (error) {
        call.ok = false;
        throw error;
      }
    },
  };
  // An action that reads its own namespace from a variable (FunctionDescriptor.namespaceEnv) gets it, in both places.
  const own: Record<string, string> = action.namespaceEnv === undefined ? {} : { [action.namespaceEnv]: options.ownNamespace };
  const inProcess = podActionHandler(action, { kube: recording, env: { RULES: '*', ...own }, log: jsonLogger({ function: name }, () => undefined) });
  for (const probe of probes) {
    calls = [];
    const { event, response } = kubelessEvent(JSON.parse(terminalShellAlert(namespace, probe)) as unknown, randomUUID());
    const answer = await inProcess(event, kubelessContext());
    if (response.statusCode !== 200 || answer.status !== 'done') {
      throw new Error(`${name} did not act on its probe alert: ${response.statusCode} ${JSON.stringify(answer).slice(0, 300)}`);
    }
  }
  const template = calls;
  const probe = probes[1];
  const floorAlert = async (pod: string): Promise<number> => {
    const swaps = [
      [probe, pod],
      [uids.get(probe)!, uids.get(pod)!],
      // What a name may hold of the uid (capture-evidence's Secret, falco-evidence-<uuid>-<shortHash(uid)>).
      [shortHash(uids.get(probe)!), shortHash(uids.get(pod)!)],
    ] as const;
    const start = process.hrtime.bigint();
    for (const call of template) {
      const path = replace(call.path, swaps);
      const answer = await floor.request(call.method, path, call.body === undefined ? undefined : replace(call.body, swaps), call.contentType);
      if ((answer.status >= 200 && answer.status < 300) !== call.ok) {
        throw new Error(`the floor's ${call.method} ${path} answered ${answer.status} (the action's own call ${call.ok ? 'succeeded' : 'failed'}): ${answer.text.slice(0, 200)}`);
      }
    }
    return msSince(start);
  };

  const runtime = await startRuntimeProcess({
    runtimePath: options.artifacts.runtimePath,
    exitWithParentPath: options.artifacts.exitWithParentPath,
    functionsDir: options.artifacts.functionsDir,
    name,
    env: { KUBECONFIG: options.kubeconfig, RULES: '*', ...own },
    logDir: options.logDir,
  });
  const sidekick = new SidekickClient(runtime.port);
  try {
    const bodies = new Map(ours.map((pod) => [pod, terminalShellAlert(namespace, pod)]));
    const ourAlert = async (pod: string): Promise<number> => {
      const body = bodies.get(pod)!;
      const start = process.hrtime.bigint();
      const answer = await sidekick.post(body);
      const ms = msSince(start);
      const outcome = answer.status === 200 ? ((JSON.parse(answer.body) as { status?: string }).status ?? '') : '';
      if (outcome !== 'done') throw new Error(`${name} answered ${answer.status} for the pod ${pod}: ${answer.body.slice(0, 300)}`);
      return ms;
    };
    const take = (list: string[], n: number) => list.splice(0, n);
    await inBlock(take(ours, WARM_UP_ALERTS), 1, ourAlert);
    await inBlock(take(theirs, WARM_UP_ALERTS), 1, floorAlert);

    const figures: Figure[] = [];
    const details: Record<string, unknown> = { callsPerAlert: template.map((c) => `${c.method} ${c.path.replace(probe, '<pod>')}${c.ok ? '' : ' (fails, as for the action)'}`) };
    for (const [mode, perRound, inFlight] of [
      ['one at a time', plan.sequentialPerRound, 1],
      [`${plan.inFlight} in flight`, plan.concurrentPerRound, plan.inFlight],
    ] as const) {
      const our: Block[] = [];
      const their: Block[] = [];
      for (let r = 1; r <= plan.rounds; r++) {
        progress(`cluster: ${name}: ${mode}, round ${r} of ${plan.rounds}`);
        const runOurs = async () => our.push(await inBlock(take(ours, perRound), inFlight, ourAlert));
        const runFloor = async () => their.push(await inBlock(take(theirs, perRound), inFlight, floorAlert));
        if (r % 2 === 1) {
          await runOurs();
          await runFloor();
        } else {
          await runFloor();
          await runOurs();
        }
      }
      const latency = summarize(our.flatMap((b) => b.latencies));
      const floorLatency = summarize(their.flatMap((b) => b.latencies));
      const rate = summarize(our.map((b) => b.latencies.length / b.seconds));
      const floorRate = summarize(their.map((b) => b.latencies.length / b.seconds));
      figures.push({
        name: `${name}, ${mode}: latency per alert`,
        unit: 'ms',
        summary: roundSummary(latency),
        comparison: { baseline: 'floor', baselineMedian: round(floorLatency.median), ratio: round(latency.median / floorLatency.median, 3) },
        note: `p99 ${(latency.p99 / floorLatency.p99).toFixed(2)}× floor (${floorLatency.p99.toFixed(1)} ms)`,
      });
      figures.push({
        name: `${name}, ${mode}: throughput`,
        unit: 'alerts/s',
        summary: roundSummary(rate),
        comparison: { baseline: 'floor', baselineMedian: round(floorRate.median), ratio: round(rate.median / floorRate.median, 3) },
        note: `runs = blocks of ${perRound} alerts`,
      });
      details[mode] = { ours: { latency: roundSummary(latency), rate: roundSummary(rate) }, floor: { latency: roundSummary(floorLatency), rate: roundSummary(floorRate) } };
    }
    return { figures, details };
  } finally {
    sidekick.close();
    await runtime.close();
  }
}

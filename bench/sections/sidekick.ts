/**
 * Section 7: the forwarder driven exactly as Falcosidekick's kubeless output drives it (bench/lib/sidekick-output.ts:
 * a FIFO semaphore of `maxconcurrentrequests`, its headers and body, no timeout, no retry), against the real API
 * server with the real actions: the built bundles, each in the runtime in its own process, the forwarder with its
 * default routing table (a terminal shell goes to label-pod and network-isolate). At maxconcurrentrequests 1
 * (Falcosidekick's default) and more: alerts/s, answer time, Kubernetes calls per alert (the API server's own request
 * counters), and every alert answered and carried out (each pod read back from the server). One fresh pod per alert.
 *
 * Then the forwarder's own cost: the forwarder with a table that sends the shell to label-pod only, next to
 * label-pod called directly by the same output, one alert in flight, on the same API calls (counted on both sides);
 * blocks of the two alternate, so that a drift of the machine weighs on both alike.
 */
import * as path from 'path';
import type { Artifacts } from '../lib/artifacts';
import { terminalShellAlert } from '../lib/alerts';
import { callsBetween, createNamespace, createPods, listPods, requestCounts, withCluster, type BenchCluster } from '../lib/cluster';
import type { Figure, SectionBody } from '../lib/report';
import type { RuntimeProcess } from '../lib/runtime-process';
import { DEFAULT_ROUTES, serveAction, serveForwarder, shellRoutes } from '../lib/served';
import { KubelessOutput, type Delivery } from '../lib/sidekick-output';
import { round, roundSummary, summarize, type Summary } from '../lib/stats';

export interface SidekickPlan {
  /** Falcosidekick's maxconcurrentrequests values; the first is the one the others are compared with (1). */
  readonly concurrencies: readonly number[];
  /** Blocks per concurrency, each of `alertsPerBlock` alerts handed to the output at once. */
  readonly blocks: number;
  readonly alertsPerBlock: number;
  /** Rounds of the forwarder-vs-direct comparison, each one block of each side. */
  readonly overheadRounds: number;
  readonly overheadPerBlock: number;
}

const WARM_UP = 5;
const FLAGGED = 'falco.org/flagged';
const BOTH = ['label-pod', 'network-isolate'];
const QUARANTINE = 'falco-response.io/quarantine';

interface Block {
  /** The actions every alert is routed to. */
  readonly routed: readonly string[];
  readonly deliveries: readonly Delivery[];
  readonly seconds: number;
  readonly calls: number;
  readonly byKind: Record<string, number>;
}

const ms = (from: bigint, to: bigint) => Number(to - from) / 1e6;

/** A summary, or none (NaN, shown as -) when no alert was done at all. */
function summaryOf(samples: readonly number[]): Summary {
  return samples.length === 0 ? { runs: 0, min: Number.NaN, median: Number.NaN, max: Number.NaN, p99: Number.NaN } : summarize(samples);
}

/** Hands every alert of the block to the output at once (Falco sends faster than one at a time) and waits for all. */
async function runBlock(cluster: BenchCluster, output: KubelessOutput, bodies: readonly string[], routed: readonly string[]): Promise<Block> {
  const before = await requestCounts(cluster.floor);
  const started = process.hrtime.bigint();
  const deliveries = await Promise.all(bodies.map((b) => output.send(b)));
  const seconds = ms(started, process.hrtime.bigint()) / 1000;
  const { total, byKind } = callsBetween(before, await requestCounts(cluster.floor));
  return { routed, deliveries, seconds, calls: total, byKind };
}

/** Why an answer of the forwarder is not "done by every routed action", or undefined when it is. */
function notDone(delivery: Delivery, actions: readonly string[]): string | undefined {
  if (delivery.status !== 200) return `${delivery.status}${delivery.error === undefined ? '' : ` (${delivery.error})`}: ${delivery.body.slice(0, 200)}`;
  let answer: { status?: string; action?: string; results?: { action: string; status: string }[] };
  try {
    answer = JSON.parse(delivery.body) as typeof answer;
  } catch {
    return `200 but not JSON: ${delivery.body.slice(0, 200)}`;
  }
  if (answer.status !== 'done') return `status ${String(answer.status)}: ${delivery.body.slice(0, 200)}`;
  if (answer.results === undefined) return answer.action === actions[0] && actions.length === 1 ? undefined : `no results: ${delivery.body.slice(0, 200)}`;
  const results = answer.results.map((r) => `${r.action}:${r.status}`).join(',');
  return results === actions.map((a) => `${a}:done`).join(',') ? undefined : `results ${results}`;
}

/** The pods whose labels do not show every action's effect. */
async function notCarriedOut(cluster: BenchCluster, namespace: string, pods: readonly string[], labels: readonly string[]): Promise<string[]> {
  const found = await listPods(cluster.floor, namespace);
  return pods.filter((p) => labels.some((l) => found.get(p)?.labels[l] !== 'true'));
}

export async function sidekickSection(artifacts: Artifacts, plan: SidekickPlan, progress: (line: string) => void): Promise<SectionBody> {
  const ran = await withCluster('sidekick', progress, (cluster) => measure(cluster, artifacts, plan, progress));
  if (ran.kind === 'skipped') return { status: 'skipped', reason: ran.reason, method: '', figures: [] };
  return ran.value;
}

async function measure(cluster: BenchCluster, artifacts: Artifacts, plan: SidekickPlan, progress: (line: string) => void): Promise<SectionBody> {
  const namespace = await createNamespace(cluster.floor, `sidekick-${Date.now().toString(36)}`);
  const logDir = path.join(cluster.state, 'sidekick');
  const served: RuntimeProcess[] = [];
  const keep = (r: RuntimeProcess) => (served.push(r), r);
  const outputs: KubelessOutput[] = [];
  const output = (port: number, n: number) => {
    const o = new KubelessOutput(port, n);
    outputs.push(o);
    return o;
  };
  try {
    progress('sidekick: serving label-pod, network-isolate and the forwarder (default table, and a table to label-pod only)');
    const actions = new Map<string, RuntimeProcess>();
    for (const name of ['label-pod', 'network-isolate']) actions.set(name, keep(await serveAction(artifacts, name, cluster.kubeconfig, logDir)));
    const forwarder = keep(await serveForwarder(artifacts, DEFAULT_ROUTES, actions, logDir));
    const forwarderToLabel = keep(await serveForwarder(artifacts, shellRoutes(['label-pod']), actions, logDir));

    let serial = 0;
    const pods = (n: number) => Array.from({ length: n }, () => `p${String(serial++).padStart(5, '0')}`);
    const total = WARM_UP * 3 + plan.concurrencies.length * plan.blocks * plan.alertsPerBlock + 2 * plan.overheadRounds * plan.overheadPerBlock;
    progress(`sidekick: creating ${total} pods`);
    const all = pods(total);
    await createPods(cluster.floor, namespace, all);
    serial = 0;
    const bodiesFor = (names: readonly string[]) => names.map((p) => terminalShellAlert(namespace, p));

    // Warm-up: JIT, sockets, network-isolate's policy in the namespace.
    for (const port of [forwarder.port, forwarderToLabel.port, actions.get('label-pod')!.port]) {
      await runBlock(cluster, output(port, 1), bodiesFor(pods(WARM_UP)), []);
    }

    /** Per run label: alerts not done by every routed action, pods without every effect, and the first reason seen. */
    const shortfalls = new Map<string, { notDone: number; notCarriedOut: number; reasons: string[] }>();
    const check = async (label: string, block: Block, names: readonly string[], routed: readonly string[], effects: readonly string[]) => {
      const tally = shortfalls.get(label) ?? { notDone: 0, notCarriedOut: 0, reasons: [] };
      shortfalls.set(label, tally);
      const wrong = block.deliveries.map((d) => notDone(d, routed)).filter((w): w is string => w !== undefined);
      tally.notDone += wrong.length;
      const missing = await notCarriedOut(cluster, namespace, names, effects);
      tally.notCarriedOut += missing.length;
      if (wrong.length > 0 && tally.reasons.length < 3) tally.reasons.push(wrong[0]);
      if (missing.length > 0 && tally.reasons.length < 3) tally.reasons.push(`no effect on ${missing.slice(0, 3).join(', ')}`);
    };
    const statuses = (blocks: readonly Block[]) => {
      const n: Record<string, number> = {};
      for (const d of blocks.flatMap((b) => b.deliveries)) n[String(d.status)] = (n[String(d.status)] ?? 0) + 1;
      return n;
    };
    const carriedOut = (label: string, blocks: readonly Block[], alerts: number): Figure => {
      const tally = shortfalls.get(label) ?? { notDone: 0, notCarriedOut: 0, reasons: [] };
      return {
        name: `${label}: alerts done and carried out`,
        unit: 'alerts',
        value: alerts - Math.max(tally.notDone, tally.notCarriedOut),
        note: `of ${alerts}; answers ${JSON.stringify(statuses(blocks))}${tally.reasons.length === 0 ? ', every pod read back with the effect' : `; ${tally.notDone} not done, ${tally.notCarriedOut} pods without the effect: ${tally.reasons.join(' | ')}`}`,
      };
    };
    const inFlightSeen: number[] = [];

    const byConcurrency = new Map<number, Block[]>(plan.concurrencies.map((c) => [c, []]));
    for (let b = 1; b <= plan.blocks; b++) {
      for (const c of plan.concurrencies) {
        progress(`sidekick: forwarder -> label-pod + network-isolate, maxconcurrentrequests ${c}, block ${b} of ${plan.blocks}`);
        const names = pods(plan.alertsPerBlock);
        const sidekick = output(forwarder.port, c);
        const block = await runBlock(cluster, sidekick, bodiesFor(names), BOTH);
        inFlightSeen.push(sidekick.maxSeenInFlight);
        await check(`forwarder -> 2 actions, maxconcurrentrequests ${c}`, block, names, BOTH, [FLAGGED, QUARANTINE]);
        byConcurrency.get(c)!.push(block);
      }
    }

    const viaForwarder: Block[] = [];
    const direct: Block[] = [];
    for (let r = 1; r <= plan.overheadRounds; r++) {
      progress(`sidekick: forwarder -> label-pod vs label-pod directly, 1 in flight, round ${r} of ${plan.overheadRounds}`);
      const sides = [
        async () => {
          const names = pods(plan.overheadPerBlock);
          const block = await runBlock(cluster, output(forwarderToLabel.port, 1), bodiesFor(names), ['label-pod']);
          await check('forwarder -> label-pod, 1 in flight', block, names, ['label-pod'], [FLAGGED]);
          viaForwarder.push(block);
        },
        async () => {
          const names = pods(plan.overheadPerBlock);
          const block = await runBlock(cluster, output(actions.get('label-pod')!.port, 1), bodiesFor(names), ['label-pod']);
          await check('label-pod directly, 1 in flight', block, names, ['label-pod'], [FLAGGED]);
          direct.push(block);
        },
      ];
      for (const side of r % 2 === 1 ? sides : [...sides].reverse()) await side();
    }

    // Of the alerts done by every routed action: a call refused (503) is fast and does nothing, and is lost.
    const done = (b: Block) => b.deliveries.filter((d) => notDone(d, b.routed) === undefined);
    const latencies = (blocks: readonly Block[]) => blocks.flatMap((b) => done(b).map((d) => ms(d.sentAt, d.answeredAt)));
    const rates = (blocks: readonly Block[]) => blocks.map((b) => done(b).length / b.seconds);
    const perAlert = (blocks: readonly Block[]) => blocks.reduce((n, b) => n + b.calls, 0) / blocks.reduce((n, b) => n + b.deliveries.length, 0);
    const kinds = (blocks: readonly Block[]) => {
      const sum: Record<string, number> = {};
      const alerts = blocks.reduce((n, b) => n + b.deliveries.length, 0);
      for (const b of blocks) for (const [k, n] of Object.entries(b.byKind)) sum[k] = (sum[k] ?? 0) + n;
      return Object.fromEntries(Object.entries(sum).map(([k, n]) => [k, round(n / alerts, 3)]));
    };

    const figures: Figure[] = [];
    const details: Record<string, unknown> = {};
    const first = plan.concurrencies[0];
    const firstRate = summaryOf(rates(byConcurrency.get(first)!));
    const firstLatency = summaryOf(latencies(byConcurrency.get(first)!));
    for (const c of plan.concurrencies) {
      const blocks = byConcurrency.get(c)!;
      const rate = summaryOf(rates(blocks));
      const latency = summaryOf(latencies(blocks));
      const versus = c === first ? undefined : { baseline: `maxconcurrentrequests ${first}` };
      figures.push({
        name: `forwarder -> 2 actions, maxconcurrentrequests ${c}: throughput`,
        unit: 'alerts/s',
        summary: roundSummary(rate),
        ...(versus === undefined ? {} : { comparison: { ...versus, baselineMedian: round(firstRate.median), ratio: round(rate.median / firstRate.median, 3) } }),
        note: `runs = blocks of ${plan.alertsPerBlock}; alerts done by both actions per second`,
      });
      figures.push({
        name: `forwarder -> 2 actions, maxconcurrentrequests ${c}: answer time`,
        unit: 'ms',
        summary: roundSummary(latency),
        ...(versus === undefined ? {} : { comparison: { ...versus, baselineMedian: round(firstLatency.median), ratio: round(latency.median / firstLatency.median, 3) } }),
        note: 'alerts done: from the call on the wire to the answer read whole',
      });
      figures.push({ name: `forwarder -> 2 actions, maxconcurrentrequests ${c}: Kubernetes calls per alert`, unit: 'calls', value: round(perAlert(blocks), 3) });
      figures.push(carriedOut(`forwarder -> 2 actions, maxconcurrentrequests ${c}`, blocks, plan.blocks * plan.alertsPerBlock));
      details[`maxconcurrentrequests ${c}`] = { callsPerAlert: kinds(blocks), rate: roundSummary(rate), latency: roundSummary(latency) };
    }
    const ours = summaryOf(latencies(viaForwarder));
    const theirs = summaryOf(latencies(direct));
    const ourRate = summaryOf(rates(viaForwarder));
    const theirRate = summaryOf(rates(direct));
    figures.push({
      name: 'forwarder -> label-pod, 1 in flight: answer time',
      unit: 'ms',
      summary: roundSummary(ours),
      comparison: { baseline: 'label-pod directly', baselineMedian: round(theirs.median), ratio: round(ours.median / theirs.median, 3) },
      note: `p99 ${(ours.p99 / theirs.p99).toFixed(2)}× direct (${theirs.p99.toFixed(1)} ms); goal at most 1.2×`,
    });
    figures.push({
      name: 'forwarder -> label-pod, 1 in flight: throughput',
      unit: 'alerts/s',
      summary: roundSummary(ourRate),
      comparison: { baseline: 'label-pod directly', baselineMedian: round(theirRate.median), ratio: round(ourRate.median / theirRate.median, 3) },
      note: `runs = blocks of ${plan.overheadPerBlock}`,
    });
    figures.push({
      name: 'forwarder -> label-pod, 1 in flight: Kubernetes calls per alert',
      unit: 'calls',
      value: round(perAlert(viaForwarder), 3),
      note: `label-pod directly: ${round(perAlert(direct), 3)} (the same calls: the forwarder itself makes none)`,
    });
    figures.push(carriedOut('forwarder -> label-pod, 1 in flight', viaForwarder, plan.overheadRounds * plan.overheadPerBlock));
    figures.push(carriedOut('label-pod directly, 1 in flight', direct, plan.overheadRounds * plan.overheadPerBlock));
    details.overhead = { viaForwarder: kinds(viaForwarder), direct: kinds(direct) };
    details.mostInFlightAtTheOutput = Math.max(...inFlightSeen);
    return {
      status: 'done',
      method:
        `kube-apiserver 1.20.2 + etcd on 127.0.0.1; Falcosidekick's kubeless output emulated (FIFO semaphore of maxconcurrentrequests, its headers, ` +
        `no timeout, no retry, Go's keep-alive with 2 idle connections); ${plan.blocks} block(s) of ${plan.alertsPerBlock} terminal-shell alerts per ` +
        `maxconcurrentrequests (${plan.concurrencies.join(', ')}), each handed over at once, one fresh pod per alert; forwarder (default table) and actions ` +
        `each in the runtime in its own process (current Node), admin kubeconfig; calls = apiserver_request_total on pods, events, networkpolicies; ` +
        `then ${plan.overheadRounds} round(s) of ${plan.overheadPerBlock} alerts, forwarder -> label-pod vs label-pod directly, alternating`,
      figures,
      details,
    };
  } finally {
    for (const o of outputs) o.close();
    await Promise.all(served.map((r) => r.close()));
  }
}

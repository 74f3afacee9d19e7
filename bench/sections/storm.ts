/**
 * Section 8: a storm. One burst of alerts handed to Falcosidekick's kubeless output at once (bench/lib/sidekick-output.ts,
 * at the maxconcurrentrequests given): most of them repeats of a terminal shell on a few noisy pods and alerts of a
 * rule no route wants on the same pods, with a few real attacks (a terminal shell on a pod of its own) spread through
 * it. Against the real API server: the time to drain the burst, the time from each attack alert's hand-over to its
 * pod isolated (the quarantine label seen on a watch of the pods), the Kubernetes calls in all (the API server's own
 * request counters) and every alert answered.
 *
 * Ours: the forwarder with its default table (label-pod + network-isolate). The baseline, side by side in the same
 * run and the same burst: a function that does what the seed's did (bench/naive/seed-delete-pod.ts: one DELETE per
 * alert of the routed rule, no read, no guard), called by the same output; its attack's pod counts as handled when the
 * watch sees it deleted. Each side and burst has a namespace of its own. Before each burst, a few attack alerts
 * alone (one at a time, nothing else queued) give the time an attack takes when it waits behind nothing.
 */
import * as path from 'path';
import type { Artifacts } from '../lib/artifacts';
import { podAlert, terminalShellAlert } from '../lib/alerts';
import { callsBetween, createNamespace, createPods, listPods, requestCounts, watchPods, withCluster, type BenchCluster, type PodEvent } from '../lib/cluster';
import type { Figure, SectionBody } from '../lib/report';
import type { RuntimeProcess } from '../lib/runtime-process';
import { DEFAULT_ROUTES, serve, serveAction, serveForwarder } from '../lib/served';
import { KubelessOutput, type Delivery } from '../lib/sidekick-output';
import { round, roundSummary, summarize } from '../lib/stats';

export interface StormPlan {
  readonly alerts: number;
  /** Real attacks, each on a pod of its own, spread evenly through the burst. */
  readonly attacks: number;
  /** The pods all the other alerts are about. */
  readonly noisyPods: number;
  /** Falcosidekick's maxconcurrentrequests for each burst. */
  readonly concurrencies: readonly number[];
  /** Attack alerts sent alone before each burst. */
  readonly alone: number;
}

export type StormAlert =
  | { readonly kind: 'attack'; readonly pod: string }
  /** A terminal shell again on a noisy pod: routed, the same action on the same target. */
  | { readonly kind: 'repeat'; readonly pod: string }
  /** A rule no route wants (packet socket), on a noisy pod. */
  | { readonly kind: 'unwanted'; readonly pod: string };

/** The routed rule (the default table's) and a rule no route wants, as their fixtures carry them. */
const SHELL_RULE = 'Terminal shell in container';
const UNWANTED_FIXTURE = 'packet-socket';
const QUARANTINE = 'falco-response.io/quarantine';
/** The longest wait for an action's effect to reach the watch once its alert was answered. */
const EFFECT_WAIT_MS = 10000;

/**
 * The burst, in the order it is handed over: attack i at position ⌊(i + ½)·alerts / attacks⌋, every other alert a
 * repeat or an unwanted one, in turn, each pair on the next noisy pod (so that every noisy pod gets both).
 */
export function stormComposition(plan: Pick<StormPlan, 'alerts' | 'attacks' | 'noisyPods'>): StormAlert[] {
  if (plan.attacks < 1 || plan.noisyPods < 1 || plan.alerts < plan.attacks) throw new Error('a storm needs at least one attack, one noisy pod and no fewer alerts than attacks');
  const at = new Map(Array.from({ length: plan.attacks }, (_, i) => [Math.floor(((i + 0.5) * plan.alerts) / plan.attacks), i]));
  const alerts: StormAlert[] = [];
  let noise = 0;
  for (let position = 0; position < plan.alerts; position++) {
    const attack = at.get(position);
    if (attack !== undefined) {
      alerts.push({ kind: 'attack', pod: `attack-${attack}` });
      continue;
    }
    const pod = `noisy-${Math.floor(noise / 2) % plan.noisyPods}`;
    alerts.push({ kind: noise % 2 === 0 ? 'repeat' : 'unwanted', pod });
    noise++;
  }
  return alerts;
}

interface Side {
  readonly label: string;
  readonly port: number;
  /** Whether the watch event shows the pod handled: isolated for ours, deleted for the baseline. */
  handled(event: PodEvent): boolean;
  /** The pods not handled, read back from the server after the burst. */
  notHandled(cluster: BenchCluster, namespace: string, pods: readonly string[]): Promise<string[]>;
}

interface Burst {
  readonly drainMs: number;
  /** Per attack: from hand-over to the pod handled (watch), and how many alerts were ahead of it. */
  readonly attacks: readonly { readonly ms: number; readonly ahead: number; readonly answerMs: number }[];
  readonly aloneMs: readonly number[];
  readonly calls: number;
  readonly byKind: Record<string, number>;
  readonly statuses: Record<string, number>;
  readonly outcomes: Record<string, number>;
  readonly answered: number;
}

const ms = (from: bigint, to: bigint) => Number(to - from) / 1e6;

/** One side's burst at one concurrency, in a fresh namespace. */
async function burst(cluster: BenchCluster, side: Side, plan: StormPlan, concurrency: number, progress: (line: string) => void): Promise<Burst> {
  const namespace = await createNamespace(cluster.floor, `storm-${side.label === 'ours' ? 'o' : 's'}${concurrency}-${Date.now().toString(36)}`);
  const composition = stormComposition(plan);
  const attackPods = composition.filter((a) => a.kind === 'attack').map((a) => a.pod);
  const alonePods = Array.from({ length: plan.alone }, (_, i) => `alone-${i}`);
  const noisy = Array.from({ length: plan.noisyPods }, (_, i) => `noisy-${i}`);
  await createPods(cluster.floor, namespace, [...noisy, ...attackPods, ...alonePods]);

  const handledAt = new Map<string, bigint>();
  const waiters = new Map<string, () => void>();
  const watch = await watchPods(cluster, namespace, (event) => {
    if (handledAt.has(event.name) || !side.handled(event)) return;
    handledAt.set(event.name, event.at);
    waiters.get(event.name)?.();
  });
  const handled = (pod: string) =>
    handledAt.has(pod)
      ? Promise.resolve()
      : new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`${side.label}: the pod ${namespace}/${pod} was not handled within ${EFFECT_WAIT_MS / 1000} s of its answer`)), EFFECT_WAIT_MS);
          waiters.set(pod, () => {
            clearTimeout(timer);
            resolve();
          });
        });
  const output = new KubelessOutput(side.port, concurrency);
  try {
    // Alone: one attack at a time, nothing else queued. The first one also sets up what a namespace needs once.
    const aloneMs: number[] = [];
    for (const pod of alonePods) {
      const delivery = await output.send(terminalShellAlert(namespace, pod));
      if (delivery.status === 0) throw new Error(`${side.label}: the alert alone on ${pod} got no answer: ${delivery.error ?? ''}`);
      await handled(pod);
      aloneMs.push(ms(delivery.queuedAt, handledAt.get(pod)!));
    }

    const bodies = composition.map((a) => (a.kind === 'unwanted' ? podAlert(UNWANTED_FIXTURE, namespace, a.pod) : terminalShellAlert(namespace, a.pod)));
    progress(`storm: ${side.label}, maxconcurrentrequests ${concurrency}: ${bodies.length} alerts at once (${attackPods.length} attacks)`);
    const before = await requestCounts(cluster.floor);
    const started = process.hrtime.bigint();
    const deliveries: Delivery[] = await Promise.all(bodies.map((b) => output.send(b)));
    const drainMs = ms(started, process.hrtime.bigint());
    await Promise.all(attackPods.map(handled));
    const { total, byKind } = callsBetween(before, await requestCounts(cluster.floor));

    const missing = await side.notHandled(cluster, namespace, [...attackPods, ...noisy]);
    if (missing.length > 0) throw new Error(`${side.label}: pods not handled after the burst: ${missing.join(', ')}`);
    const statuses: Record<string, number> = {};
    const outcomes: Record<string, number> = {};
    for (const d of deliveries) {
      statuses[String(d.status)] = (statuses[String(d.status)] ?? 0) + 1;
      let outcome = 'not JSON';
      try {
        outcome = String((JSON.parse(d.body) as { status?: unknown }).status);
      } catch {
        // counted as not JSON
      }
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    }
    const attacks = composition
      .map((a, position) => ({ a, position }))
      .filter(({ a }) => a.kind === 'attack')
      .map(({ a, position }) => ({
        ms: ms(deliveries[position].queuedAt, handledAt.get(a.pod)!),
        answerMs: ms(deliveries[position].queuedAt, deliveries[position].answeredAt),
        ahead: position,
      }));
    return { drainMs, attacks, aloneMs, calls: total, byKind, statuses, outcomes, answered: deliveries.filter((d) => d.status !== 0).length };
  } finally {
    output.close();
    watch.stop();
  }
}

export async function stormSection(artifacts: Artifacts, plan: StormPlan, progress: (line: string) => void): Promise<SectionBody> {
  const ran = await withCluster('storm', progress, (cluster) => measure(cluster, artifacts, plan, progress));
  if (ran.kind === 'skipped') return { status: 'skipped', reason: ran.reason, method: '', figures: [] };
  return ran.value;
}

async function measure(cluster: BenchCluster, artifacts: Artifacts, plan: StormPlan, progress: (line: string) => void): Promise<SectionBody> {
  const logDir = path.join(cluster.state, 'storm');
  const served: RuntimeProcess[] = [];
  try {
    progress('storm: serving label-pod, network-isolate, the forwarder (default table) and the seed-like delete-pod');
    const actions = new Map<string, RuntimeProcess>();
    for (const name of ['label-pod', 'network-isolate']) {
      const r = await serveAction(artifacts, name, cluster.kubeconfig, logDir);
      served.push(r);
      actions.set(name, r);
    }
    const forwarder = await serveForwarder(artifacts, DEFAULT_ROUTES, actions, logDir);
    served.push(forwarder);
    const seedBundle = await artifacts.seed();
    const seed = await serve(artifacts, { name: 'delete-pod', env: { KUBECONFIG: cluster.kubeconfig, RULES: SHELL_RULE }, logDir, functionsDir: path.dirname(seedBundle.path) });
    served.push(seed);

    const ours: Side = {
      label: 'ours',
      port: forwarder.port,
      handled: (e) => e.type !== 'DELETED' && e.labels[QUARANTINE] === 'true',
      notHandled: async (c, namespace, pods) => {
        const found = await listPods(c.floor, namespace);
        return pods.filter((p) => found.get(p)?.labels[QUARANTINE] !== 'true');
      },
    };
    const baseline: Side = {
      label: 'seed-like',
      port: seed.port,
      handled: (e) => e.type === 'DELETED',
      notHandled: async (c, namespace, pods) => {
        const found = await listPods(c.floor, namespace);
        return pods.filter((p) => found.has(p));
      },
    };

    const figures: Figure[] = [];
    const details: Record<string, unknown> = {};
    for (const concurrency of plan.concurrencies) {
      // The baseline first in one burst, ours first in the next: a drift of the machine weighs on both alike.
      const order = plan.concurrencies.indexOf(concurrency) % 2 === 0 ? [baseline, ours] : [ours, baseline];
      const results = new Map<string, Burst>();
      for (const side of order) results.set(side.label, await burst(cluster, side, plan, concurrency, progress));
      const o = results.get('ours')!;
      const s = results.get('seed-like')!;
      const at = `storm ${plan.alerts}, maxconcurrentrequests ${concurrency}`;
      const vsSeed = (mine: number, theirs: number) => ({ baseline: 'seed-like delete-pod', baselineMedian: round(theirs), ratio: round(mine / theirs, 3) });
      const one = (value: number) => ({ runs: 1, min: round(value), median: round(value), max: round(value), p99: round(value) });
      figures.push({ name: `${at}: time to drain`, unit: 'ms', summary: one(o.drainMs), comparison: vsSeed(o.drainMs, s.drainMs), note: 'goal: at most 0.1× the seed-like' });
      const oAttack = summarize(o.attacks.map((a) => a.ms));
      const sAttack = summarize(s.attacks.map((a) => a.ms));
      const oAlone = summarize(o.aloneMs);
      figures.push({
        name: `${at}: attack alert to its pod isolated`,
        unit: 'ms',
        summary: roundSummary(oAttack),
        comparison: vsSeed(oAttack.median, sAttack.median),
        note: `seed-like: to the pod deleted, max ${sAttack.max.toFixed(0)} ms; positions ${o.attacks.map((a) => a.ahead).join(', ')} of ${plan.alerts}`,
      });
      figures.push({
        name: `${at}: attack in the storm vs alone`,
        unit: 'ms',
        summary: roundSummary(oAttack),
        comparison: { baseline: 'an attack alone', baselineMedian: round(oAlone.median), ratio: round(oAttack.median / oAlone.median, 3) },
        note: `max ${(oAttack.max / oAlone.median).toFixed(1)}× alone; the goal: an attack waits behind no alert of another pod (≈1×)`,
      });
      figures.push({ name: `${at}: Kubernetes calls in all`, unit: 'calls', value: o.calls, comparison: vsSeed(o.calls, s.calls) });
      figures.push({
        name: `${at}: alerts answered`,
        unit: 'alerts',
        value: o.answered,
        note: `of ${plan.alerts}; ours ${JSON.stringify(o.outcomes)}, seed-like ${s.answered} answered ${JSON.stringify(s.statuses)}`,
      });
      details[`maxconcurrentrequests ${concurrency}`] = {
        ours: { ...o, attacks: o.attacks.map((a) => ({ ms: round(a.ms), answerMs: round(a.answerMs), ahead: a.ahead })), aloneMs: o.aloneMs.map((x) => round(x)) },
        seedLike: { ...s, attacks: s.attacks.map((a) => ({ ms: round(a.ms), answerMs: round(a.answerMs), ahead: a.ahead })), aloneMs: s.aloneMs.map((x) => round(x)) },
      };
    }
    const counts = stormComposition(plan).reduce<Record<string, number>>((n, a) => ({ ...n, [a.kind]: (n[a.kind] ?? 0) + 1 }), {});
    return {
      status: 'done',
      method:
        `kube-apiserver 1.20.2 + etcd on 127.0.0.1; per maxconcurrentrequests (${plan.concurrencies.join(', ')}) one burst of ${plan.alerts} alerts handed at once to ` +
        `Falcosidekick's kubeless output (emulated): ${counts.repeat} terminal-shell repeats and ${counts.unwanted} packet-socket alerts (no route) on ${plan.noisyPods} ` +
        `pods, ${counts.attack} attacks on pods of their own; ours = forwarder (default table) -> label-pod + network-isolate, isolated = quarantine label on ` +
        `a watch; baseline = seed-like delete-pod (one DELETE per shell alert), deleted = the watch's DELETED; times from the hand-over to Falcosidekick; ` +
        `${plan.alone} attack(s) alone before each burst; calls = apiserver_request_total on pods, events, networkpolicies`,
      figures,
      details,
    };
  } finally {
    await Promise.all(served.map((r) => r.close()));
  }
}

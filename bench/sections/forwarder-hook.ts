/**
 * Section 5: the forwarder's throughput, measured by bench/forwarder.ts (its author's measureForwarder: the forwarder
 * bundle in the runtime, routing terminal-shell alerts to two action stubs on loopback, next to the same load sent
 * to one action directly). This hook repeats its bursts, summarises them, and fails the section when an alert was
 * not answered 200: the forwarder answers 200 only when its actions did.
 */
import { measureForwarder, type LoadRun } from '../forwarder';
import type { Figure, SectionBody } from '../lib/report';
import { round, summarize } from '../lib/stats';

export interface ForwarderPlan {
  /** Bursts per concurrency, each with its own forwarder process. */
  readonly repetitions: number;
  readonly alerts: number;
  readonly concurrencies: readonly number[];
}

/** Alerts of a run not answered 200. */
function lost(run: LoadRun): number {
  return run.alerts - (run.statuses['200'] ?? 0);
}

/** Per action, alerts the forwarder did not deliver exactly once (each counted by event-id at the action). */
function notExactlyOnce(run: LoadRun): string[] {
  return Object.entries(run.invocations ?? {})
    .filter(([, n]) => n.exactlyOnce !== run.alerts)
    .map(([action, n]) => `${action}: ${n.missing} missing, ${n.duplicated} duplicated of ${run.alerts}`);
}

export async function forwarderSection(plan: ForwarderPlan, progress: (line: string) => void): Promise<SectionBody> {
  const repetitions: LoadRun[][] = [];
  for (let r = 1; r <= plan.repetitions; r++) {
    const result = await measureForwarder({
      alerts: plan.alerts,
      concurrencies: plan.concurrencies,
      progress: (line) => progress(`forwarder ${r}/${plan.repetitions}: ${line}`),
    });
    const missing = result.runs.filter((run) => lost(run) > 0);
    if (missing.length > 0) {
      throw new Error(
        `alerts not answered 200: ${missing.map((m) => `${m.target}, ${m.concurrency} in flight: ${lost(m)} of ${m.alerts} (${JSON.stringify(m.statuses)})`).join('; ')}`,
      );
    }
    const miscounted = result.runs.filter((run) => run.target === 'forwarder').flatMap((run) => notExactlyOnce(run).map((m) => `${run.concurrency} in flight: ${m}`));
    if (miscounted.length > 0) throw new Error(`actions not invoked exactly once per alert: ${miscounted.join('; ')}`);
    if (result.runs.some((run) => run.target === 'forwarder' && run.invocations === undefined)) {
      throw new Error('the forwarder runs carry no invocation counts: nothing proves each action was called once per alert');
    }
    repetitions.push([...result.runs]);
  }
  const figures: Figure[] = [];
  for (const concurrency of plan.concurrencies) {
    const pick = (target: LoadRun['target']) => repetitions.map((runs) => runs.find((x) => x.target === target && x.concurrency === concurrency)!);
    const ours = pick('forwarder');
    const direct = pick('one action directly');
    const rate = summarize(ours.map((x) => x.alertsPerSecond));
    const directRate = summarize(direct.map((x) => x.alertsPerSecond));
    const p50 = summarize(ours.map((x) => x.latencyMs.p50)).median;
    const directP50 = summarize(direct.map((x) => x.latencyMs.p50)).median;
    const p99 = summarize(ours.map((x) => x.latencyMs.p99)).median;
    figures.push({
      name: `forwarder -> 2 actions, ${concurrency} in flight: throughput`,
      unit: 'alerts/s',
      summary: { runs: rate.runs, min: rate.min, median: rate.median, max: rate.max, p99: Number.NaN },
      comparison: { baseline: '1 action directly', baselineMedian: round(directRate.median), ratio: round(rate.median / directRate.median, 3) },
      note: `runs = bursts of ${plan.alerts}; all ${plan.alerts * plan.repetitions} answered 200, each action invoked exactly once per alert (counted by event-id)`,
    });
    figures.push({
      name: `forwarder -> 2 actions, ${concurrency} in flight: latency`,
      unit: 'ms',
      // Each burst gives its own p50, p99 and max, not every latency: shown are the medians over bursts (max: the max).
      summary: {
        runs: plan.alerts * plan.repetitions,
        min: Number.NaN,
        median: round(p50),
        p99: round(p99),
        max: round(Math.max(...ours.map((x) => x.latencyMs.max))),
      },
      comparison: { baseline: '1 action directly', baselineMedian: round(directP50), ratio: round(p50 / directP50, 3) },
    });
  }
  return {
    status: 'done',
    method:
      `bench/forwarder.ts: ${plan.repetitions} burst(s) of ${plan.alerts} terminal-shell alerts per concurrency (after a warm-up), forwarder bundle in the runtime (MAX_QUEUED raised to the concurrency) ` +
      `routing each alert to label-pod and network-isolate stubs (answer at once); baseline = the same load sent to one stub directly; latency = medians of each burst's p50/p99`,
    figures,
    details: { bursts: repetitions },
  };
}

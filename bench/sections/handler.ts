/**
 * Section 4: what our code costs per alert when the API costs nothing. The runner of each pod action (decode,
 * guards, run, answer, the log line serialised but not written) with the in-memory cluster injected as its Kube, and the
 * io-ts decoding of each alert fixture alone.
 */
import { randomUUID } from 'crypto';
import type { PodAction } from '../../lib/action';
import { decodeEvent } from '../../lib/event';
import { jsonLogger } from '../../lib/log';
import { podActionHandler } from '../../lib/runner';
import { discoverFunctions } from '../../build/discover';
import { ROOT } from '../../build/main';
import { alertFixtures, terminalShellAlert } from '../lib/alerts';
import { kindOf } from '../lib/artifacts';
import type { Figure, SectionBody } from '../lib/report';
import { msSince, round, roundSummary, summarize } from '../lib/stats';
import { fullPodObject, kubelessContext, kubelessEvent } from '../../test/helpers/fixtures';
import { MemoryCluster } from '../../test/helpers/memory-cluster';

const DISTINCT_ALERTS = 64;

export async function handlerSection(
  plan: { runs: number; alertsPerRun: number; decodesPerRun: number },
  progress: (line: string) => void,
): Promise<SectionBody> {
  const actions = discoverFunctions(ROOT)
    .filter((f) => kindOf(f) === 'pod-action')
    .map((f) => f.descriptor as PodAction);
  const context = kubelessContext();
  // Distinct pods and uuids, parsed up front: the runtime parses the body before the handler runs.
  const events = Array.from({ length: DISTINCT_ALERTS }, (_, i) =>
    kubelessEvent(JSON.parse(terminalShellAlert('default', `web-${i}`)) as unknown, randomUUID()),
  );
  // Answers at once, in process, and keeps no write: every alert finds its pod as it was.
  const cluster = new MemoryCluster({ keepWrites: false });
  for (let i = 0; i < DISTINCT_ALERTS; i++) cluster.add(fullPodObject('default', `web-${i}`));
  const handlers = actions.map((action) => ({
    name: action.name,
    handler: podActionHandler(action, {
      kube: cluster.kube(),
      env: { RULES: '*' },
      ownNamespace: 'falco-response',
      log: jsonLogger({ function: action.name }, () => undefined),
    }),
  }));
  const fixtures = [...alertFixtures()].map(([name, text]) => ({ name, event: kubelessEvent(JSON.parse(text) as unknown).event }));

  const answers = new Map<string, Set<string>>();
  const handlerRates = new Map<string, number[]>();
  const decodeRates = new Map<string, number[]>();
  const decodeVerdicts = new Map<string, string>();
  // Run 0 warms the JIT up and is not counted.
  for (let run = 0; run <= plan.runs; run++) {
    progress(`handler: run ${run} of ${plan.runs}${run === 0 ? ' (warm-up)' : ''}`);
    for (const { name, handler } of handlers) {
      const seen = answers.get(name) ?? new Set<string>();
      answers.set(name, seen);
      const start = process.hrtime.bigint();
      for (let i = 0; i < plan.alertsPerRun; i++) {
        const { event, response } = events[i % DISTINCT_ALERTS];
        const body = await handler(event, context);
        if (run === 0) seen.add(`${response.statusCode} ${String(body.status)}`);
      }
      const ms = msSince(start);
      cluster.take(); // the calls it recorded, which the bench does not read
      if (run > 0) handlerRates.set(name, [...(handlerRates.get(name) ?? []), plan.alertsPerRun / (ms / 1000)]);
    }
    for (const { name, event } of fixtures) {
      let verdict = 'decoded';
      const start = process.hrtime.bigint();
      for (let i = 0; i < plan.decodesPerRun; i++) {
        try {
          decodeEvent(event);
        } catch {
          verdict = 'refused (400)';
        }
      }
      const ms = msSince(start);
      decodeVerdicts.set(name, verdict);
      if (run > 0) decodeRates.set(name, [...(decodeRates.get(name) ?? []), plan.decodesPerRun / (ms / 1000)]);
    }
  }

  const problems = [...answers].filter(([, seen]) => [...seen].some((a) => a !== '200 done')).map(([name, seen]) => `${name} answered ${[...seen].join(', ')}`);
  if (problems.length > 0) throw new Error(`the stub run did not act on every alert: ${problems.join('; ')}`);
  const figures: Figure[] = [];
  for (const [name, rates] of handlerRates) {
    const s = summarize(rates);
    figures.push({ name: `${name}: alerts through the runner`, unit: 'alerts/s', summary: roundSummary(s), note: `${(1e6 / s.median).toFixed(1)} µs per alert` });
  }
  const all = fixtures.map((f) => summarize(decodeRates.get(f.name)!).median);
  for (const f of fixtures) {
    const s = summarize(decodeRates.get(f.name)!);
    figures.push({
      name: `decodeEvent: ${f.name}`,
      unit: 'decodes/s',
      summary: roundSummary(s),
      note: `${(1e6 / s.median).toFixed(2)} µs each; ${decodeVerdicts.get(f.name) ?? ''}`,
    });
  }
  return {
    status: 'done',
    method: `${plan.runs} runs after a warm-up; a run = ${plan.alertsPerRun} alerts one after the other per action (${DISTINCT_ALERTS} distinct alerts, RULES=*), ${plan.decodesPerRun} decodes per fixture`,
    figures,
    details: {
      decodeMedianOfFixtures: round(summarize(all).median),
      answers: Object.fromEntries([...answers].map(([k, v]) => [k, [...v]])),
    },
  };
}

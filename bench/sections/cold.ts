/**
 * Section 2: cold start. Each figure is a set of fresh processes (bench/probe/cold-start.js), each timing require()
 * of one bundle and its first alert against the in-memory cluster on loopback; our delete-pod is compared with the naive
 * build of the same handler in the same run, under the same Node. Runs are interleaved (bundle by bundle, Node by
 * Node, then the next round) so that a drift of the machine spreads over every figure alike.
 */
import { writeFileSync } from 'fs';
import * as path from 'path';
import { CLIENT_NODE_VERSION, kindOf, type Artifacts } from '../lib/artifacts';
import { FIXTURES, fullPodObject } from '../../test/helpers/fixtures';
import { startStub } from '../../test/helpers/http-stub';
import { MemoryCluster } from '../../test/helpers/memory-cluster';
import { run } from '../lib/processes';
import type { Comparison, Figure, SectionBody } from '../lib/report';
import { round, roundSummary, summarize } from '../lib/stats';

const ALERT = path.join(FIXTURES, 'alerts', 'terminal-shell.json');
const NAIVE = 'naive delete-pod';

interface Subject {
  readonly name: string;
  readonly file: string;
  /** Whether it takes an alert straight from Falcosidekick (a pod action, the forwarder, the naive handler). */
  readonly firstAlert: boolean;
  readonly env: Record<string, string>;
}

interface Probe {
  requireMs?: number;
  firstAlertMs?: number;
  status?: number;
  outcome?: string;
  body?: unknown;
  error?: string;
}

export interface NodeBinary {
  readonly label: string;
  readonly path: string;
}

async function probe(probePath: string, node: NodeBinary, subject: Subject, env: Record<string, string>): Promise<Probe> {
  const args = [probePath, subject.file, subject.firstAlert ? ALERT : '-'];
  const finished = await run(node.path, args, { env: { ...env, ...subject.env }, timeoutMs: 30000 });
  const line = finished.stdout.split('\n').find((l) => l.startsWith('BENCH_COLD '));
  if (line === undefined) {
    const why = (finished.stderr.split('\n').find((l) => /Error|error:/.test(l)) ?? finished.stderr).trim().slice(0, 300);
    return { error: `exit ${String(finished.code)}: ${why || 'no output'}` };
  }
  return JSON.parse(line.slice('BENCH_COLD '.length)) as Probe;
}

export async function coldSection(
  artifacts: Artifacts,
  nodes: readonly NodeBinary[],
  runs: number,
  progress: (line: string) => void,
): Promise<SectionBody> {
  const naive = await artifacts.naive();
  // Every probe finds the pod of the fixture alert as it was: the cluster answers writes but keeps none.
  const cluster = new MemoryCluster({ keepWrites: false }).add(fullPodObject('default', 'kubecon'));
  const api = await cluster.listen();
  // The actions the forwarder's default routes call, answering at once as an action does.
  const actions = await startStub((request) => {
    const action = request.url.split('/')[1];
    return { status: 200, body: { status: 'done', action, target: { namespace: 'default', pod: 'kubecon' }, dryRun: false, message: `${action}: done` } };
  });
  try {
    const kubeconfig = api.writeKubeconfig(path.join(artifacts.dir, 'fake-api.kubeconfig.json'));
    const names = artifacts.functions.map((f) => f.name);
    const subjects: Subject[] = artifacts.functions.map((f) => {
      const env: Record<string, string> = {};
      // A forwarder reads its routing table from a file and calls the actions at ACTION_ENDPOINTS: give it the
      // default table and point every action at the stub, which answers for them.
      for (const file of f.descriptor.configFiles ?? []) {
        const where = path.join(artifacts.dir, `${f.name}.${file.name}`);
        writeFileSync(where, file.content);
        env[file.env] = where;
      }
      if (f.descriptor.namespaceEnv !== undefined) env[f.descriptor.namespaceEnv] = 'falco-response';
      if (Object.values(f.descriptor.parameters).some((p) => p.env === 'ACTION_ENDPOINTS')) {
        env.ACTION_ENDPOINTS = JSON.stringify(Object.fromEntries(names.map((n) => [n, `${actions.url}${n}`])));
      }
      return { name: f.name, file: artifacts.bundlePath(f.name), firstAlert: kindOf(f) === 'pod-action' || kindOf(f) === 'forwarder', env };
    });
    subjects.push({ name: NAIVE, file: naive.path, firstAlert: true, env: {} });
    // RULES=*: every action acts on the fixture alert (a terminal shell), whatever rules it answers by default.
    const env = { PATH: process.env.PATH ?? '', KUBECONFIG: kubeconfig, FUNC_HANDLER: 'handler', RULES: '*' };

    const samples = new Map<string, { require: number[]; firstAlert: number[]; errors: string[]; answers: Set<string> }>();
    const key = (subject: string, node: string) => `${subject}\u0000${node}`;
    for (let round = 1; round <= runs; round++) {
      progress(`cold start: round ${round} of ${runs}`);
      for (const subject of subjects) {
        for (const node of nodes) {
          const entry = samples.get(key(subject.name, node.label)) ?? { require: [], firstAlert: [], errors: [], answers: new Set<string>() };
          samples.set(key(subject.name, node.label), entry);
          if (entry.errors.length > 0) continue; // a bundle that cannot start on this Node will not start next round
          const result = await probe(artifacts.probePath, node, subject, env);
          if (result.error !== undefined) {
            entry.errors.push(result.error);
            continue;
          }
          entry.require.push(result.requireMs!);
          if (subject.firstAlert) {
            const answer = `${result.status ?? '?'} ${result.outcome ?? '?'}`;
            entry.answers.add(answer);
            if (result.status !== 200 || (result.outcome !== undefined && result.outcome !== 'done')) {
              entry.errors.push(`first alert answered ${answer}: ${JSON.stringify(result.body).slice(0, 300)}`);
            } else entry.firstAlert.push(result.firstAlertMs!);
          }
        }
      }
    }

    const figures: Figure[] = [];
    const notes: string[] = [];
    for (const subject of subjects) {
      for (const node of nodes) {
        const entry = samples.get(key(subject.name, node.label))!;
        const label = `${subject.name === NAIVE ? `${NAIVE} (client-node ${CLIENT_NODE_VERSION})` : subject.name}, Node ${node.label}`;
        if (entry.errors.length > 0) {
          const note = `${label}: ${entry.errors[0]}`;
          notes.push(note);
          figures.push({ name: `${label}: not measured`, unit: 'ms', note: entry.errors[0] });
          if (entry.require.length === 0) continue;
        }
        const baseline = subject.name === 'delete-pod' ? samples.get(key(NAIVE, node.label)) : undefined;
        const versus = (ours: number[], theirs: number[] | undefined): { comparison?: Comparison } => {
          if (theirs === undefined || theirs.length === 0 || ours.length === 0) return {};
          const baselineMedian = summarize(theirs).median;
          return { comparison: { baseline: 'naive', baselineMedian: round(baselineMedian), ratio: round(summarize(ours).median / baselineMedian, 3) } };
        };
        figures.push({
          name: `${label}: require()`,
          unit: 'ms',
          summary: roundSummary(summarize(entry.require)),
          ...versus(entry.require, baseline?.require),
        });
        if (subject.firstAlert && entry.firstAlert.length > 0) {
          figures.push({
            name: `${label}: require() + first alert`,
            unit: 'ms',
            summary: roundSummary(summarize(entry.firstAlert)),
            ...versus(entry.firstAlert, baseline?.firstAlert),
          });
        }
      }
    }
    return {
      status: 'done',
      method: `${runs} fresh processes per figure, interleaved; time from before require() of the bundle; first alert = the terminal-shell fixture against an in-memory cluster on 127.0.0.1 (plain http, answers at once), the forwarder's default routes calling a stub that answers as the actions do`,
      figures,
      details: {
        nodes: nodes.map((n) => n.label),
        fakeApiRequests: countBy(cluster.take().map((c) => `${c.method} ${/\/namespaces\/[^/]+\/([^/?]+)/.exec(c.path)?.[1] ?? c.path}`)),
        actionRequests: countBy(actions.received.map((r) => `${r.method} ${r.url}`)),
        answers: Object.fromEntries([...samples].map(([k, v]) => [k.replace('\u0000', ' @ Node '), [...v.answers]])),
        problems: notes,
      },
    };
  } finally {
    await Promise.all([api.close(), actions.close()]);
  }
}

function countBy(keys: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const key of keys) counts[key] = (counts[key] ?? 0) + 1;
  return counts;
}

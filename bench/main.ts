/**
 * `npm run bench`: the figures that show the functions are small and fast, each next to a baseline measured in the
 * same run. A script, not a test: it prints one table (or JSON with --json) and writes a file only when asked.
 *
 *   npm run bench                         every section (about 10 minutes on 2 cores, 7 of them sidekick and storm); writes nothing
 *   npm run bench -- --quick              fewer runs (each section under a minute)
 *   npm run bench -- --only size,cold     some sections: size, cold, cluster, handler, forwarder, build, sidekick, storm
 *   npm run -s bench -- --json            JSON on stdout instead of the table (progress goes to stderr either way)
 *   npm run bench -- --out file.json      also writes the JSON to file.json
 *   npm run bench -- --write-results      also writes it to bench/results.json, the tracked figures the README quotes
 *                                         (a run of every section only, so that they stay whole)
 *
 * Loopback only. Every child process and the cluster it starts are stopped at the end, on error, on Ctrl-C and when
 * the watchdog fires.
 */
import { execFileSync } from 'child_process';
import { writeFileSync } from 'fs';
import * as path from 'path';
import { ROOT } from '../build/main';
import { commaList } from '../lib/params';
import { buildArtifacts, type Artifacts } from './lib/artifacts';
import { gitState, machine } from './lib/machine';
import { onCleanup, runCleanups } from './lib/processes';
import { renderTable, SECTIONS, type BenchResult, type SectionBody, type SectionName, type SectionResult } from './lib/report';
import { buildSection } from './sections/build';
import { clusterSection } from './sections/cluster';
import { coldSection, type NodeBinary } from './sections/cold';
import { forwarderSection, type ForwarderPlan } from './sections/forwarder-hook';
import { handlerSection } from './sections/handler';
import { sidekickSection, type SidekickPlan } from './sections/sidekick';
import { sizeSection } from './sections/size';
import { stormSection, type StormPlan } from './sections/storm';

const NODE14_VERSION = '14.21.3';
export const RESULTS_FILE = path.join(ROOT, 'bench', 'results.json');

/** How many runs each section makes; --quick keeps every figure but with fewer runs. */
export interface Plan {
  readonly coldRuns: number;
  readonly cluster: { readonly rounds: number; readonly sequentialPerRound: number; readonly concurrentPerRound: number; readonly inFlight: number };
  readonly handler: { readonly runs: number; readonly alertsPerRun: number; readonly decodesPerRun: number };
  readonly forwarder: ForwarderPlan;
  readonly buildRuns: number;
  readonly sidekick: SidekickPlan;
  readonly storm: StormPlan;
  /** The whole run stops (and cleans up) past this. */
  readonly watchdogSeconds: number;
}

const FULL: Plan = {
  coldRuns: 30,
  cluster: { rounds: 8, sequentialPerRound: 25, concurrentPerRound: 64, inFlight: 8 },
  handler: { runs: 7, alertsPerRun: 5000, decodesPerRun: 20000 },
  forwarder: { repetitions: 3, alerts: 1000, concurrencies: [1, 8, 32] },
  buildRuns: 5,
  sidekick: { concurrencies: [1, 8, 32], blocks: 3, alertsPerBlock: 100, overheadRounds: 4, overheadPerBlock: 50 },
  storm: { alerts: 10000, attacks: 5, noisyPods: 4, concurrencies: [1, 8], alone: 5 },
  watchdogSeconds: 1500,
};

const QUICK: Plan = {
  coldRuns: 10,
  cluster: { rounds: 2, sequentialPerRound: 25, concurrentPerRound: 32, inFlight: 8 },
  handler: { runs: 3, alertsPerRun: 1000, decodesPerRun: 4000 },
  forwarder: { repetitions: 2, alerts: 1000, concurrencies: [8] },
  buildRuns: 2,
  sidekick: { concurrencies: [1, 8], blocks: 1, alertsPerBlock: 20, overheadRounds: 2, overheadPerBlock: 10 },
  storm: { alerts: 1000, attacks: 3, noisyPods: 4, concurrencies: [8], alone: 2 },
  watchdogSeconds: 240,
};

export interface Options {
  readonly quick: boolean;
  readonly json: boolean;
  readonly only: readonly SectionName[];
  readonly out: string | undefined;
  readonly writeResults: boolean;
}

class UsageError extends Error {
  override name = 'UsageError';
}

export function parseOptions(argv: readonly string[]): Options {
  let quick = false;
  let json = false;
  let only: SectionName[] | undefined;
  let out: string | undefined;
  let writeResults = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') throw new UsageError(`${flag} needs a value`);
      return v;
    };
    if (flag === '--quick') quick = true;
    else if (flag === '--json') json = true;
    else if (flag === '--only') {
      const names = commaList(value());
      const unknown = names.filter((n) => !(SECTIONS as readonly string[]).includes(n));
      if (unknown.length > 0 || names.length === 0) {
        throw new UsageError(`--only: unknown section ${unknown.join(', ') || '(none given)'}; the sections are ${SECTIONS.join(', ')}`);
      }
      only = names as SectionName[];
    } else if (flag === '--out') out = path.resolve(value());
    else if (flag === '--write-results') writeResults = true;
    else if (flag === '--help' || flag === '-h') throw new UsageError('');
    else throw new UsageError(`unknown option ${arg}`);
  }
  if (writeResults && only !== undefined) {
    throw new UsageError(`--write-results: only a run of every section writes ${path.relative(ROOT, RESULTS_FILE)}, so that it stays whole (give --out to keep this one)`);
  }
  return { quick, json, only: only ?? [...SECTIONS], out, writeResults };
}

const USAGE = [
  `usage: npm run bench -- [--quick] [--only ${SECTIONS.join(',')}] [--json] [--out file.json] [--write-results]`,
  '  --quick          fewer runs of every figure (each section under a minute)',
  `  --only LIST      some sections, comma-separated: ${SECTIONS.join(', ')}`,
  '                   cluster, sidekick and storm start a real API server (test/e2e/cluster/up.sh);',
  '                   sidekick: the forwarder called as Falcosidekick calls it, maxconcurrentrequests 1, 8 and 32;',
  '                   storm: 10,000 alerts at once with a few attacks in them, next to a seed-like delete-pod',
  '  --json           JSON on stdout instead of the table',
  '  --out FILE       also write the JSON to FILE',
  `  --write-results  also write it to ${path.relative(ROOT, RESULTS_FILE)}, the tracked figures (every section only);`,
  '                   without it a run writes no file',
].join('\n');

function node14(progress: (line: string) => void): NodeBinary | undefined {
  try {
    const out = execFileSync('bash', [path.join(ROOT, 'test', 'runtimes', 'install-node.sh'), NODE14_VERSION], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 180000,
    });
    const binary = out.trim().split('\n').pop()!;
    return { label: NODE14_VERSION, path: binary };
  } catch (error) {
    progress(`Node ${NODE14_VERSION} is not available (${(error as Error).message.split('\n')[0]}): cold starts under the current Node only`);
    return undefined;
  }
}

/** Where a run writes its JSON: only where it is told to, never the tracked results by default. */
export function resultFiles(options: Options): string[] {
  return [...(options.out === undefined ? [] : [options.out]), ...(options.writeResults ? [RESULTS_FILE] : [])];
}

async function main(): Promise<void> {
  let options: Options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    const message = (error as Error).message;
    process.stderr.write(`${message === '' ? '' : `${message}\n`}${USAGE}\n`);
    process.exit(message === '' ? 0 : 2);
  }
  const plan = options.quick ? QUICK : FULL;
  const started = process.hrtime.bigint();
  const progress = (line: string) => process.stderr.write(`[bench] ${line}\n`);

  let stopping = false;
  const abort = (why: string, code: number) => {
    if (stopping) return;
    stopping = true;
    progress(`${why}: stopping what was started`);
    runCleanups().then(
      () => process.exit(code),
      (error: unknown) => {
        progress(`cleaning up failed: ${String(error)}`);
        process.exit(code === 0 ? 1 : code);
      },
    );
  };
  const watchdog = setTimeout(() => abort(`the watchdog fired after ${plan.watchdogSeconds} s`, 1), plan.watchdogSeconds * 1000);
  watchdog.unref();
  process.on('SIGINT', () => abort('interrupted', 130));
  process.on('SIGTERM', () => abort('terminated', 143));

  const wanted = (s: SectionName) => options.only.includes(s);
  const nodes: NodeBinary[] = [];
  const old = wanted('cold') ? node14(progress) : undefined;
  if (old !== undefined) nodes.push(old);
  nodes.push({ label: process.version.replace(/^v/, ''), path: process.execPath });

  let artifacts: Artifacts | undefined;
  const needArtifacts = options.only.some((s) => s === 'size' || s === 'cold' || s === 'cluster' || s === 'sidekick' || s === 'storm');
  const sections: SectionResult[] = [];
  try {
    if (needArtifacts) {
      progress('building every bundle from the current source');
      artifacts = await buildArtifacts();
      const built = artifacts;
      onCleanup(() => Promise.resolve(built.remove()));
    }
    const runners: Record<SectionName, () => Promise<SectionBody>> = {
      size: () => sizeSection(artifacts!),
      cold: () => coldSection(artifacts!, nodes, plan.coldRuns, progress),
      cluster: () => clusterSection(artifacts!, plan.cluster, progress),
      handler: () => handlerSection(plan.handler, progress),
      forwarder: () => forwarderSection(plan.forwarder, progress),
      build: () => buildSection(plan.buildRuns, progress),
      sidekick: () => sidekickSection(artifacts!, plan.sidekick, progress),
      storm: () => stormSection(artifacts!, plan.storm, progress),
    };
    const titles: Record<SectionName, string> = {
      size: '1. Size',
      cold: '2. Cold start',
      cluster: '3. Per-alert latency and throughput against a real API server',
      handler: '4. Handler overhead without the API',
      forwarder: '5. Forwarder',
      build: '6. Build time',
      sidekick: "7. Through the forwarder as Falcosidekick calls it (maxconcurrentrequests), against a real API server",
      storm: '8. A storm of alerts with a few real attacks in it, against a real API server',
    };
    for (const name of SECTIONS.filter(wanted)) {
      progress(`section ${titles[name]}`);
      const sectionStart = process.hrtime.bigint();
      let body: SectionBody;
      try {
        body = await runners[name]();
      } catch (error) {
        const message = (error as Error).message;
        progress(`section ${name} failed: ${message}`);
        body = { status: 'failed', reason: message.split('\n')[0].slice(0, 500), method: '', figures: [] };
      }
      sections.push({ name, title: titles[name], ...body, seconds: Number(process.hrtime.bigint() - sectionStart) / 1e9 });
    }
  } finally {
    await runCleanups();
    clearTimeout(watchdog);
  }

  const result: BenchResult = {
    schema: 1,
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    mode: options.quick ? 'quick' : 'full',
    sectionsRequested: options.only,
    machine: machine(old?.label),
    ...(gitState(ROOT) === undefined ? {} : { git: gitState(ROOT)! }),
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
    sections,
  };
  const files = resultFiles(options);
  for (const file of files) {
    writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    progress(`wrote ${path.relative(process.cwd(), file)}`);
  }
  if (files.length === 0) progress(`no file written (--out FILE, or --write-results for ${path.relative(ROOT, RESULTS_FILE)})`);
  process.stdout.write(options.json ? `${JSON.stringify(result, null, 2)}\n` : `${renderTable(result)}\n`);
  if (sections.some((s) => s.status === 'failed')) process.exitCode = 1;
}

if (require.main === module) {
  main().catch(async (error: Error) => {
    process.stderr.write(`[bench] failed: ${error.stack ?? error.message}\n`);
    await runCleanups();
    process.exit(1);
  });
}

/**
 * `npx tsx bench/forwarder.ts [--alerts 2000]`: the forwarder's throughput and latency on loopback. Prints figures,
 * asserts nothing.
 *
 * The forwarder bundle, built from the current source, runs in the Kubeless-compatible runtime as its own process
 * (as in a pod, access log and JSON log included) with the default routing table: `Terminal shell in container` goes
 * to label-pod and network-isolate, here two HTTP stubs in this process that answer at once as an action does. The
 * load is terminal-shell alerts POSTed as Falcosidekick does, over kept-alive connections, at several concurrencies.
 * The baseline is the same load sent straight to one stub: what one action behind Falcosidekick costs without the
 * forwarder. Only 127.0.0.1 is used; the request count is bounded; every process started is stopped.
 */
import { spawn, type ChildProcess } from 'child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'fs';
import * as http from 'http';
import type { AddressInfo } from 'net';
import { tmpdir } from 'os';
import * as path from 'path';
import { bundle } from '../build/bundle';
import { ROOT } from '../build/main';
import forwarder from '../functions/forwarder/router';
import { alertText } from '../test/helpers/fixtures';

export interface LoadRun {
  readonly target: 'forwarder' | 'one action directly';
  readonly concurrency: number;
  readonly alerts: number;
  readonly seconds: number;
  readonly alertsPerSecond: number;
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly max: number };
  /** HTTP statuses of the answers, by count: all 200 when every action answered. */
  readonly statuses: Readonly<Record<string, number>>;
  /**
   * For the forwarder: per action, how many of the run's alerts (by event-id) it received exactly once, not at all,
   * or more than once. Nothing lost means `exactlyOnce` equals `alerts` for every action.
   */
  readonly invocations?: Readonly<Record<string, { exactlyOnce: number; missing: number; duplicated: number }>>;
}

export interface ForwarderBench {
  readonly bundleBytes: number;
  readonly node: string;
  readonly runs: readonly LoadRun[];
}

export interface ForwarderBenchOptions {
  /** Alerts per run, after a warm-up of a tenth of it. */
  readonly alerts: number;
  readonly concurrencies: readonly number[];
  readonly progress?: (line: string) => void;
}

const ALERT = Buffer.from(alertText('terminal-shell'));
const ACTION_ANSWER = JSON.stringify({
  status: 'done',
  action: 'label-pod',
  target: { namespace: 'default', pod: 'kubecon' },
  dryRun: false,
  message: "labelled the pod 'kubecon' in the namespace 'default' (falco.org/flagged=true)",
});

function quantile(sorted: readonly number[], q: number): number {
  const position = (sorted.length - 1) * q;
  const low = Math.floor(position);
  const high = Math.ceil(position);
  return sorted[low] + (sorted[high] - sorted[low]) * (position - low);
}

interface ActionStub {
  readonly url: string;
  /** Requests received, by event-id. */
  readonly received: Map<string, number>;
  close(): Promise<void>;
}

/** An action stub: reads the alert, counts it by event-id, answers 200 with what an action answers. */
async function actionStub(): Promise<ActionStub> {
  const received = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const id = String(req.headers['event-id']);
    received.set(id, (received.get(id) ?? 0) + 1);
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8' });
      res.end(ACTION_ANSWER);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The forwarder in the runtime, as its own process; resolves with its port once it listens. */
function startForwarder(dir: string, env: Record<string, string>): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [path.join(dir, 'kubeless-runtime.js')], {
    env: {
      MOD_NAME: 'forwarder',
      FUNC_HANDLER: 'handler',
      KUBELESS_INSTALL_VOLUME: dir,
      FUNC_PORT: '0',
      FUNC_HOST: '127.0.0.1',
      FUNC_TIMEOUT: '30',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8').slice(0, 4000)));
    const onData = (c: Buffer) => {
      out += c.toString('utf8');
      const match = /"message":"listening","port":(\d+)/.exec(out);
      if (match !== null) {
        // Keep draining the access log and the JSON log, as a pod's log collector would.
        child.stdout.off('data', onData);
        child.stdout.resume();
        resolve({ child, port: Number(match[1]) });
      }
    };
    child.stdout.on('data', onData);
    child.once('exit', (code) => reject(new Error(`the forwarder exited (code ${code}) before listening: ${err}`)));
  });
}

let loads = 0;

/** A fresh event-id for every alert of every load, so that each action's receipts can be counted per alert. */
function eventIdsFor(count: number): string[] {
  const run = (++loads).toString(16).padStart(4, '0');
  return Array.from({ length: count }, (_, i) => `00000000-0000-4000-${run}-${String(i).padStart(12, '0')}`);
}

/** POSTs `count` alerts with `concurrency` in flight over kept-alive connections; returns each latency in ms. */
async function load(
  url: string,
  count: number,
  concurrency: number,
): Promise<{ latencies: number[]; seconds: number; statuses: Record<string, number>; eventIds: string[] }> {
  const eventIds = eventIdsFor(count);
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let next = 0;
  const one = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const started = process.hrtime.bigint();
      const request = http.request(
        url,
        {
          method: 'POST',
          agent,
          headers: {
            'Content-Type': 'application/json',
            'User-Agent': 'Falcosidekick',
            'event-id': eventIds[i],
            'event-type': 'falco',
            'event-namespace': 'falco-response',
          },
        },
        (response) => {
          response.resume();
          response.on('end', () => {
            latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
            const status = String(response.statusCode);
            statuses[status] = (statuses[status] ?? 0) + 1;
            resolve();
          });
        },
      );
      request.on('error', reject);
      request.end(ALERT);
    });
  const worker = async () => {
    while (next < count) await one(next++);
  };
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  agent.destroy();
  return { latencies, seconds, statuses, eventIds };
}

/** Per action: the run's alerts it received exactly once, not at all, more than once. */
function invocationsOf(actions: Readonly<Record<string, ActionStub>>, eventIds: readonly string[]): NonNullable<LoadRun['invocations']> {
  const counts: Record<string, { exactlyOnce: number; missing: number; duplicated: number }> = {};
  for (const [name, stub] of Object.entries(actions)) {
    const tally = { exactlyOnce: 0, missing: 0, duplicated: 0 };
    for (const id of eventIds) {
      const n = stub.received.get(id) ?? 0;
      if (n === 1) tally.exactlyOnce++;
      else if (n === 0) tally.missing++;
      else tally.duplicated++;
    }
    counts[name] = tally;
  }
  return counts;
}

async function measure(
  target: LoadRun['target'],
  url: string,
  alerts: number,
  concurrency: number,
  routedTo?: Readonly<Record<string, ActionStub>>,
): Promise<LoadRun> {
  await load(url, Math.max(50, Math.round(alerts / 10)), concurrency); // warm-up: JIT, sockets
  const { latencies, seconds, statuses, eventIds } = await load(url, alerts, concurrency);
  const sorted = latencies.sort((a, b) => a - b);
  const round = (n: number) => Number(n.toFixed(3));
  return {
    target,
    concurrency,
    alerts,
    seconds: round(seconds),
    alertsPerSecond: Math.round(alerts / seconds),
    latencyMs: { p50: round(quantile(sorted, 0.5)), p99: round(quantile(sorted, 0.99)), max: round(sorted[sorted.length - 1]) },
    statuses,
    ...(routedTo === undefined ? {} : { invocations: invocationsOf(routedTo, eventIds) }),
  };
}

export async function measureForwarder(options: ForwarderBenchOptions): Promise<ForwarderBench> {
  const progress = options.progress ?? (() => undefined);
  const dir = mkdtempSync(path.join(tmpdir(), 'falco-response-bench-forwarder-'));
  const stubs = [await actionStub(), await actionStub()];
  let child: ChildProcess | undefined;
  try {
    progress('building the forwarder bundle and the runtime from the current source');
    const built = await bundle('forwarder', path.join(ROOT, 'functions', 'forwarder', 'index.ts'), '');
    writeFileSync(path.join(dir, 'forwarder.js'), built.code);
    writeFileSync(path.join(dir, 'kubeless-runtime.js'), (await bundle('runtime', path.join(ROOT, 'runtime', 'main.ts'), '')).code);
    mkdirSync(path.join(dir, 'config'));
    const routes = path.join(dir, 'config', 'routes.json');
    writeFileSync(routes, forwarder.configFiles[0].content);
    // Room for every alert in flight (8 handled, the others queued): the defaults (8 + 8) refuse the calls past 16 with
    // 503, and this measures what the forwarder does with the alerts, not how it refuses them (section sidekick does).
    const started = await startForwarder(dir, {
      ROUTES_FILE: routes,
      ACTION_ENDPOINTS: JSON.stringify({ 'label-pod': stubs[0].url, 'network-isolate': stubs[1].url }),
      MAX_IN_FLIGHT: '8',
      MAX_QUEUED: String(Math.max(8, ...options.concurrencies)),
    });
    child = started.child;
    const forwarderUrl = `http://127.0.0.1:${started.port}/`;
    const runs: LoadRun[] = [];
    for (const concurrency of options.concurrencies) {
      progress(`${options.alerts} alerts, ${concurrency} in flight: forwarder to two actions, then one action directly`);
      runs.push(await measure('forwarder', forwarderUrl, options.alerts, concurrency, { 'label-pod': stubs[0], 'network-isolate': stubs[1] }));
      runs.push(await measure('one action directly', stubs[0].url, options.alerts, concurrency));
    }
    return { bundleBytes: built.bytes, node: process.version, runs };
  } finally {
    if (child !== undefined && child.exitCode === null) {
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await Promise.all(stubs.map((s) => s.close()));
    rmSync(dir, { recursive: true, force: true });
  }
}

function parseAlerts(argv: readonly string[]): number {
  const at = argv.indexOf('--alerts');
  const value = at === -1 ? 2000 : Number(argv[at + 1]);
  if (!Number.isInteger(value) || value < 10 || value > 100000) throw new Error('--alerts: a whole number from 10 to 100000');
  return value;
}

async function main(): Promise<void> {
  const alerts = parseAlerts(process.argv.slice(2));
  const result = await measureForwarder({ alerts, concurrencies: [1, 8, 32], progress: (line) => process.stderr.write(`[bench] ${line}\n`) });
  const rows = result.runs.map(
    (r) =>
      `${r.target.padEnd(20)} ${String(r.concurrency).padStart(4)} ${String(r.alertsPerSecond).padStart(8)}/s ` +
      `${r.latencyMs.p50.toFixed(2).padStart(8)} ${r.latencyMs.p99.toFixed(2).padStart(8)} ${r.latencyMs.max.toFixed(2).padStart(8)}  ${JSON.stringify(r.statuses)}` +
      (r.invocations === undefined ? '' : `  ${JSON.stringify(r.invocations)}`),
  );
  process.stdout.write(
    [
      `forwarder bundle ${result.bundleBytes} bytes; Node ${result.node}; ${alerts} alerts per run on 127.0.0.1`,
      `${'target'.padEnd(20)} ${'conc'.padStart(4)} ${'alerts/s'.padStart(10)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'max ms'.padStart(8)}  statuses`,
      ...rows,
    ].join('\n') + '\n',
  );
}

if (require.main === module) {
  main().catch((error: Error) => {
    process.stderr.write(`bench/forwarder.ts failed: ${error.stack ?? error.message}\n`);
    process.exit(1);
  });
}

/**
 * The functions' Prometheus metrics, with no dependency: counters and histograms kept in one registry per process,
 * served on the `/metrics` the runtime already serves. In Kubeless's Node runtime that registry is its own
 * prom-client's (reachable as `require.main.require('prom-client')`, which serves `/metrics` from its default
 * registry); in ours (runtime/server.ts) it is a `TextRegistry` the runtime renders after its Kubeless-named series.
 */

/** Label names and values of one series: `{ function: 'delete-pod', outcome: 'done', code: '' }`. */
export type Labels = Readonly<Record<string, string>>;

export interface Counter {
  inc(labels: Labels, by?: number): void;
}

export interface Histogram {
  observe(labels: Labels, value: number): void;
}

/** Where metrics are kept: asking twice for one name gives the same metric. */
export interface Registry {
  counter(name: string, help: string, labelNames: readonly string[]): Counter;
  histogram(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]): Histogram;
}

/** The upper bounds of the answer-time histogram, in seconds: from a skip answered at once to a call near its deadline. */
export const ANSWER_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** The text exposition format's escapes for a label value (backslash, double quote, line feed). */
const labelValue = (value: string) => value.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));

const labelText = (names: readonly string[], labels: Labels, extra = '') => {
  const pairs = names.map((name) => `${name}="${labelValue(labels[name] ?? '')}"`);
  if (extra !== '') pairs.push(extra);
  return pairs.length === 0 ? '' : `{${pairs.join(',')}}`;
};

/** A number as Prometheus reads it: `+Inf` for the last bucket. */
const numberText = (n: number) => (n === Infinity ? '+Inf' : String(n));

interface Kept {
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly labelNames: readonly string[];
  render(name: string): string[];
}

/**
 * Our own registry, rendered in Prometheus's text format (version 0.0.4), series in the order they first counted:
 * `registry.counter('falco_response_alerts_total', '…', ['function']).inc({ function: 'delete-pod' })`, then
 * `registry.render()`. A series exists once it counted (label values are ours, never alert text, so they are few).
 */
export class TextRegistry implements Registry {
  private readonly metrics = new Map<string, Kept>();

  counter(name: string, help: string, labelNames: readonly string[]): Counter {
    const known = this.known(name, 'counter', labelNames);
    if (known !== undefined) return known as unknown as Counter;
    const series = new Map<string, { labels: Labels; value: number }>();
    const counter = {
      help,
      type: 'counter' as const,
      labelNames,
      inc(labels: Labels, by = 1) {
        const key = labelText(labelNames, labels);
        const entry = series.get(key) ?? { labels, value: 0 };
        entry.value += by;
        series.set(key, entry);
      },
      render: (metric: string) => [...series].map(([key, entry]) => `${metric}${key} ${entry.value}`),
    };
    this.metrics.set(name, counter);
    return counter;
  }

  histogram(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]): Histogram {
    const known = this.known(name, 'histogram', labelNames);
    if (known !== undefined) return known as unknown as Histogram;
    const bounds = [...buckets, Infinity];
    const series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
    const histogram = {
      help,
      type: 'histogram' as const,
      labelNames,
      observe(labels: Labels, value: number) {
        const key = labelText(labelNames, labels);
        const entry = series.get(key) ?? { labels, counts: bounds.map(() => 0), sum: 0, count: 0 };
        bounds.forEach((bound, i) => {
          if (value <= bound) entry.counts[i]++;
        });
        entry.sum += value;
        entry.count++;
        series.set(key, entry);
      },
      render: (metric: string) =>
        [...series.values()].flatMap((entry) => [
          ...bounds.map((bound, i) => `${metric}_bucket${labelText(labelNames, entry.labels, `le="${numberText(bound)}"`)} ${entry.counts[i]}`),
          `${metric}_sum${labelText(labelNames, entry.labels)} ${entry.sum}`,
          `${metric}_count${labelText(labelNames, entry.labels)} ${entry.count}`,
        ]),
    };
    this.metrics.set(name, histogram);
    return histogram;
  }

  /** Every metric with its HELP and TYPE lines, each line ending with a line feed; empty when none was asked for. */
  render(): string {
    const lines: string[] = [];
    for (const [name, metric] of this.metrics) {
      lines.push(`# HELP ${name} ${metric.help}`, `# TYPE ${name} ${metric.type}`, ...metric.render(name));
    }
    return lines.map((line) => `${line}\n`).join('');
  }

  private known(name: string, type: Kept['type'], labelNames: readonly string[]): Kept | undefined {
    const known = this.metrics.get(name);
    if (known === undefined) return undefined;
    if (known.type !== type || known.labelNames.join(',') !== labelNames.join(',')) {
      throw new Error(`the metric ${name} is already a ${known.type} labelled ${known.labelNames.join(', ')}`);
    }
    return known;
  }
}

/** The little of prom-client (10 and later) the adapter uses. */
interface PromClient {
  readonly register: { getSingleMetric(name: string): unknown };
  readonly Counter: new (options: { name: string; help: string; labelNames: string[] }) => { inc(labels: Labels, value?: number): void };
  readonly Histogram: new (options: { name: string; help: string; labelNames: string[]; buckets: number[] }) => {
    observe(labels: Labels, value: number): void;
  };
}

const isPromClient = (value: unknown): value is PromClient => {
  const client = value as Partial<PromClient> | null;
  return typeof client?.Counter === 'function' && typeof client.Histogram === 'function' && typeof client.register?.getSingleMetric === 'function';
};

/** Our metrics in a prom-client's default registry, the one Kubeless's runtime serves on `/metrics`. */
export function promClientRegistry(client: PromClient): Registry {
  return {
    counter(name, help, labelNames) {
      const known = client.register.getSingleMetric(name) as Counter | undefined;
      return known ?? new client.Counter({ name, help, labelNames: [...labelNames] });
    },
    histogram(name, help, labelNames, buckets) {
      const known = client.register.getSingleMetric(name) as Histogram | undefined;
      return known ?? new client.Histogram({ name, help, labelNames: [...labelNames], buckets: [...buckets] });
    },
  };
}

/** Where the process's registry is kept: shared by the runtime's bundle and the function's, two copies of this module. */
export const REGISTRY_KEY = Symbol.for('falco-response.metrics');

type Holder = { [REGISTRY_KEY]?: Registry };

/**
 * The registry of this process, found once: one a runtime put at REGISTRY_KEY before loading the function (ours
 * puts a TextRegistry), else the prom-client of the program that loaded us (Kubeless's runtime), else none.
 */
export function processRegistry(
  main: { require(id: string): unknown } | undefined = typeof require === 'undefined' ? undefined : require.main,
): Registry {
  const holder = globalThis as Holder;
  const kept = holder[REGISTRY_KEY];
  if (kept !== undefined) return kept;
  let registry: Registry | undefined;
  try {
    const client = main?.require('prom-client');
    if (isPromClient(client)) registry = promClientRegistry(client);
  } catch {
    // No prom-client where the program was loaded from: not Kubeless's runtime.
  }
  // Nothing serves `/metrics` then (a test, a tool): the counts go nowhere, and the bundles carry no renderer.
  registry ??= DISCARDED;
  holder[REGISTRY_KEY] = registry;
  return registry;
}

const DISCARDED: Registry = { counter: () => ({ inc: () => undefined }), histogram: () => ({ observe: () => undefined }) };

/**
 * Why a call was refused before its alert was read: no or a wrong bearer token (401), a broken INBOUND_SECRET (500),
 * none at all where the function requires one (500), the function at its limit (503).
 */
export type RefusalReason = 'unauthorized' | 'secret-unusable' | 'secret-missing' | 'overloaded';

/** The metrics every function counts (lib/entry.ts), by the function's name. */
export interface FunctionMetrics {
  /** An answered alert: its outcome (the answer's status), the skip's code ('' when none), its answer time. */
  answered(outcome: string, code: string, seconds: number): void;
  /** A call refused before its alert was read. */
  refused(reason: RefusalReason): void;
  /** An answer shared with a call in flight for the same action and target (lib/runner.ts). */
  coalesced(): void;
  /** An answer from the memory of the call that settled the same target for an alike alert (lib/runner.ts). */
  settled(): void;
  /** What became of an audit Event queued after an answer: recorded, failed, or dropped (the queue was full). */
  auditEvent(result: 'recorded' | 'failed' | 'dropped'): void;
}

/**
 * `functionMetrics('delete-pod')` counts into `falco_response_alerts_total{function,outcome,code}`,
 * `falco_response_answer_seconds{function}`, `falco_response_refused_total{function,reason}`,
 * `falco_response_coalesced_total{function}`, `falco_response_settled_total{function}` and
 * `falco_response_audit_events_total{function,result}`.
 */
export function functionMetrics(name: string, registry: Registry = processRegistry()): FunctionMetrics {
  const alerts = registry.counter(
    'falco_response_alerts_total',
    'Alerts answered, by function, outcome (the answer status) and code (the skip code, or the failure code of a refusal such as shielded-binding; empty otherwise).',
    ['function', 'outcome', 'code'],
  );
  const seconds = registry.histogram('falco_response_answer_seconds', 'Time from a call\'s arrival to its answer, in seconds (calls refused are not in it: 401 unauthorized, 500 secret-unusable or secret-missing, 503 overloaded).', ['function'], ANSWER_BUCKETS);
  const refused = registry.counter('falco_response_refused_total', 'Calls refused before their alert was read: unauthorized (401), secret-unusable (500: INBOUND_SECRET is broken), secret-missing (500: the function requires INBOUND_SECRET and has none) or overloaded (503).', [
    'function',
    'reason',
  ]);
  const coalesced = registry.counter(
    'falco_response_coalesced_total',
    'Alerts answered with the result of a call in flight for the same action and target.',
    ['function'],
  );
  const settled = registry.counter(
    'falco_response_settled_total',
    'Alerts answered from the memory of the call that settled the same target for an alike alert, with no Kubernetes call (SETTLED_SECONDS).',
    ['function'],
  );
  const events = registry.counter('falco_response_audit_events_total', 'Audit Events queued after an answer, by result: recorded, failed or dropped.', [
    'function',
    'result',
  ]);
  return {
    answered: (outcome, code, s) => {
      alerts.inc({ function: name, outcome, code });
      seconds.observe({ function: name }, s);
    },
    refused: (reason) => refused.inc({ function: name, reason }),
    coalesced: () => coalesced.inc({ function: name }),
    settled: () => settled.inc({ function: name }),
    auditEvent: (result) => events.inc({ function: name, result }),
  };
}

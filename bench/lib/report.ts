/** The shape of a bench result (what results.json holds) and the one table printed from it. */
import type { Summary } from './stats';

export const SECTIONS = ['size', 'cold', 'cluster', 'handler', 'forwarder', 'build', 'sidekick', 'storm'] as const;
export type SectionName = (typeof SECTIONS)[number];

export type Unit = 'bytes' | 'ms' | 'µs' | 'alerts/s' | 'decodes/s' | 'calls' | 'alerts';

/** How a figure compares with its baseline measured in the same run: ours ÷ baseline, on medians. */
export interface Comparison {
  readonly baseline: string;
  readonly baselineMedian: number;
  readonly ratio: number;
}

export interface Figure {
  readonly name: string;
  readonly unit: Unit;
  /** Repeated measurements. */
  readonly summary?: Summary;
  /** An exact count (sizes), measured once because it cannot vary. */
  readonly value?: number;
  readonly comparison?: Comparison;
  readonly note?: string;
}

export interface SectionResult {
  readonly name: SectionName;
  readonly title: string;
  readonly status: 'done' | 'skipped' | 'failed';
  /** Why it was skipped or what failed. */
  readonly reason?: string;
  readonly seconds: number;
  /** What the runs were (counts, concurrency), in words. */
  readonly method: string;
  readonly figures: readonly Figure[];
  /** Anything else worth keeping for later comparison (per-fixture rates, raw answers). */
  readonly details?: unknown;
}

export interface Machine {
  readonly cores: number;
  readonly cpu: string;
  readonly memoryGiB: number;
  readonly os: string;
  readonly node: { readonly current: string; readonly node14?: string };
}

export interface BenchResult {
  readonly schema: 1;
  readonly date: string;
  readonly mode: 'full' | 'quick';
  readonly sectionsRequested: readonly SectionName[];
  readonly machine: Machine;
  readonly git?: { readonly commit: string; readonly dirty: boolean };
  readonly seconds: number;
  readonly sections: readonly SectionResult[];
}

/** A ratio as people read it: `0.04×`, `1.32×`, `12×`. */
export function formatRatio(ratio: number): string {
  if (!Number.isFinite(ratio)) return '-';
  return ratio >= 10 ? `${ratio.toFixed(0)}×` : ratio >= 0.1 ? `${ratio.toFixed(2)}×` : `${ratio.toFixed(3)}×`;
}

export function formatValue(value: number, unit: Unit): string {
  if (!Number.isFinite(value)) return '-';
  switch (unit) {
    case 'bytes':
      return value >= 1024 * 1024 ? `${(value / 1024 / 1024).toFixed(2)} MiB` : value >= 1024 ? `${(value / 1024).toFixed(1)} KiB` : `${value} B`;
    case 'ms':
      return value >= 1000 ? `${(value / 1000).toFixed(2)} s` : value >= 10 ? `${value.toFixed(1)} ms` : `${value.toFixed(2)} ms`;
    case 'µs':
      return value >= 1000 ? `${(value / 1000).toFixed(2)} ms` : `${value.toFixed(1)} µs`;
    case 'alerts/s':
    case 'decodes/s':
      return `${value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(1)}/s`;
    case 'calls':
    case 'alerts':
      return Number.isInteger(value) ? value.toLocaleString('en-US') : value.toFixed(2);
  }
}

/** p99 of a few samples is only the maximum again: shown as `-`. */
const P99_MIN_RUNS = 50;

function row(figure: Figure): string[] {
  const s = figure.summary;
  const cells = s
    ? [
        String(s.runs),
        formatValue(s.min, figure.unit),
        formatValue(s.median, figure.unit),
        s.runs >= P99_MIN_RUNS ? formatValue(s.p99, figure.unit) : '-',
        formatValue(s.max, figure.unit),
      ]
    : figure.value === undefined
      ? ['-', '', '-', '', '']
      : ['exact', '', formatValue(figure.value, figure.unit), '', ''];
  const c = figure.comparison;
  const versus = c ? `${formatRatio(c.ratio)} ${c.baseline} (${formatValue(c.baselineMedian, figure.unit)})` : '';
  return [`  ${figure.name}`, ...cells, [versus, figure.note ?? ''].filter((x) => x !== '').join('; ')];
}

/** The whole result as one aligned text table, grouped by section. */
export function renderTable(result: BenchResult): string {
  const m = result.machine;
  const header = [
    `falco-response bench, ${result.date} (${result.mode} run, ${result.seconds.toFixed(0)} s${result.git ? `, commit ${result.git.commit.slice(0, 10)}${result.git.dirty ? ' + local changes' : ''}` : ''})`,
    `machine: ${m.cores} cores, ${m.cpu}, ${m.memoryGiB} GiB, ${m.os}; Node ${m.node.current} (current)${m.node.node14 ? `, Node ${m.node.node14}` : ''}`,
    'runs, then min / median / p99 / max of them; every ratio is ours ÷ a baseline measured side by side in this run, on medians:',
    'for sizes and times below 1× is smaller or faster; for rates (/s) above 1× is faster',
    '',
  ];
  const columns = ['figure', 'runs', 'min', 'median', 'p99', 'max', 'vs baseline (its median)'];
  const rows: (string[] | string)[] = [];
  for (const section of result.sections) {
    const status = section.status === 'done' ? '' : ` [${section.status.toUpperCase()}: ${section.reason ?? ''}]`;
    rows.push(`${section.title} (${section.seconds.toFixed(0)} s)${status}`);
    if (section.method !== '') rows.push(`  ${section.method}`);
    for (const figure of section.figures) rows.push(row(figure));
  }
  const widths = columns.map((c, i) => Math.max(c.length, ...rows.filter((r): r is string[] => Array.isArray(r)).map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === 0 || i === cells.length - 1 ? cell.padEnd(widths[i]) : cell.padStart(widths[i])))
      .join('  ')
      .trimEnd();
  const body = rows.map((r) => (typeof r === 'string' ? r : line(r)));
  return [...header, line(columns), line(widths.map((w) => '-'.repeat(w))), ...body].join('\n');
}

/** What a section returns; the bench adds its name, title and duration. */
export type SectionBody = Omit<SectionResult, 'seconds' | 'name' | 'title'>;

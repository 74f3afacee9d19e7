/**
 * Section 5: the forwarder's throughput, measured by bench/forwarder.ts (its author's script: a burst of 1,000
 * alerts routed to two actions on loopback, with proof that nothing was lost). This hook runs it in its own process
 * and takes its figures into the table.
 *
 * The contract: `tsx bench/forwarder.ts --json [--quick]` prints one JSON object on stdout (progress on stderr):
 *   { "figures": Figure[] (bench/lib/report.ts), "method"?: string, "lost"?: number, "details"?: unknown }
 * `lost` (alerts unanswered or actions not invoked exactly once per alert) must be 0, or the section fails.
 * Output of any other shape is kept whole in results.json and the table says so.
 */
import { existsSync } from 'fs';
import * as path from 'path';
import { ROOT } from '../../build/main';
import { run } from '../lib/processes';
import type { Figure, SectionBody } from '../lib/report';

export const FORWARDER_BENCH = path.join(ROOT, 'bench', 'forwarder.ts');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

interface ForwarderOutput {
  figures?: Figure[];
  method?: string;
  lost?: number;
  details?: unknown;
}

function lastJson(text: string): unknown {
  const trimmed = text.trim();
  try {
    return JSON.parse(trimmed) as unknown;
  } catch {
    // a script may print other lines first: take the last line that is a JSON object
    const line = trimmed.split('\n').reverse().find((l) => l.trim().startsWith('{'));
    if (line === undefined) return undefined;
    try {
      return JSON.parse(line) as unknown;
    } catch {
      return undefined;
    }
  }
}

export async function forwarderSection(options: { quick: boolean; progress: (line: string) => void }): Promise<SectionBody> {
  if (!existsSync(FORWARDER_BENCH)) {
    return { status: 'skipped', reason: 'bench/forwarder.ts does not exist yet (the forwarder\'s author writes it)', method: '', figures: [] };
  }
  options.progress('forwarder: running bench/forwarder.ts');
  const args = [FORWARDER_BENCH, '--json', ...(options.quick ? ['--quick'] : [])];
  const finished = await run(TSX, args, { cwd: ROOT, env: process.env, timeoutMs: options.quick ? 60000 : 150000 });
  if (finished.code !== 0) {
    const tail = (finished.stderr || finished.stdout).trim().split('\n').slice(-3).join(' | ');
    throw new Error(`bench/forwarder.ts exited with ${String(finished.code)}: ${tail}`);
  }
  const output = lastJson(finished.stdout) as ForwarderOutput | undefined;
  if (output === undefined || !Array.isArray(output.figures)) {
    return {
      status: 'done',
      method: 'bench/forwarder.ts ran, but printed no {"figures": [...]} object (see the hook contract in bench/sections/forwarder-hook.ts): its output is kept in results.json',
      figures: [],
      details: { stdout: finished.stdout.slice(-20000) },
    };
  }
  if (typeof output.lost === 'number' && output.lost !== 0) throw new Error(`the forwarder lost ${output.lost} alert(s) or action call(s)`);
  return {
    status: 'done',
    method: output.method ?? 'bench/forwarder.ts',
    figures: output.figures,
    ...(output.details === undefined ? {} : { details: output.details }),
  };
}

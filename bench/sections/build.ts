/** Section 6: how long `npm run build` spends building every bundle and manifest (buildAll, in memory). */
import { buildAll } from '../../build/main';
import type { SectionBody } from '../lib/report';
import { msSince, roundSummary, summarize } from '../lib/stats';

export async function buildSection(runs: number, progress: (line: string) => void): Promise<SectionBody> {
  // The first build of a process also starts esbuild's service and loads every action: not what a rebuild costs.
  const coldStart = process.hrtime.bigint();
  const first = await buildAll();
  const coldMs = msSince(coldStart);
  const times: number[] = [];
  for (let i = 1; i <= runs; i++) {
    progress(`build: run ${i} of ${runs}`);
    const start = process.hrtime.bigint();
    await buildAll();
    times.push(msSince(start));
  }
  return {
    status: 'done',
    method: `${runs} builds after one warm-up (esbuild service started, actions loaded); the warm-up took ${coldMs.toFixed(0)} ms`,
    figures: [
      {
        name: `buildAll(): ${first.bundles.length} bundles + runtime, ${first.manifests.size} manifest files, docs`,
        unit: 'ms',
        summary: roundSummary(summarize(times)),
      },
    ],
    details: { warmUpMs: Math.round(coldMs) },
  };
}



/** Section 1: what ships. Exact byte counts, so one measurement each; the naive build is the baseline. */
import { BUNDLE_BUDGET_BYTES } from '../../build/bundle';
import { CLIENT_NODE_VERSION, gzipBytes, type Artifacts } from '../lib/artifacts';
import type { Figure, SectionBody } from '../lib/report';

/** The annotations of one object may not exceed this (client-side `kubectl apply`, shared/PROTOCOLS.md section 2). */
export const ANNOTATION_LIMIT_BYTES = 262144;

export async function sizeSection(artifacts: Artifacts): Promise<SectionBody> {
  const { build } = artifacts;
  const naive = await artifacts.naive();
  const figures: Figure[] = [];
  for (const b of build.bundles) {
    const versusNaive =
      b.name === 'delete-pod'
        ? { comparison: { baseline: `naive build (client-node ${CLIENT_NODE_VERSION})`, baselineMedian: naive.bytes, ratio: b.bytes / naive.bytes } }
        : {};
    figures.push({
      name: `${b.name}.js bundle`,
      unit: 'bytes',
      value: b.bytes,
      ...versusNaive,
      note: `gzip ${(gzipBytes(b.code) / 1024).toFixed(1)} KiB; ${((b.bytes / BUNDLE_BUDGET_BYTES) * 100).toFixed(0)}% of the ${BUNDLE_BUDGET_BYTES / 1024} KiB budget`,
    });
  }
  figures.push({
    name: 'kubeless-runtime.js (local runtime)',
    unit: 'bytes',
    value: build.runtime.bytes,
    note: `gzip ${(gzipBytes(build.runtime.code) / 1024).toFixed(1)} KiB`,
  });
  figures.push({
    name: `naive delete-pod.js (client-node ${CLIENT_NODE_VERSION})`,
    unit: 'bytes',
    value: naive.bytes,
    note: `gzip ${(naive.gzipBytes / 1024).toFixed(1)} KiB; over the ${BUNDLE_BUDGET_BYTES / 1024} KiB budget ${(naive.bytes / BUNDLE_BUDGET_BYTES).toFixed(1)} times`,
  });
  for (const [name, bytes] of build.applyAnnotationBytes) {
    figures.push({
      name: `${name} Function: apply annotation`,
      unit: 'bytes',
      value: bytes,
      note: `${((bytes / ANNOTATION_LIMIT_BYTES) * 100).toFixed(0)}% of the ${ANNOTATION_LIMIT_BYTES}-byte limit`,
    });
  }
  const manifests = [...build.manifests].map(([file, text]) => ({ file, bytes: Buffer.byteLength(text, 'utf8') }));
  for (const m of manifests) figures.push({ name: `manifests/${m.file}`, unit: 'bytes', value: m.bytes });
  return {
    status: 'done',
    method:
      'bytes as built from the current source (buildAll); gzip -9 for reference; apply annotation = JSON of the Function object, what a client-side `kubectl apply` stores',
    figures,
    details: { naive: { bytes: naive.bytes, gzipBytes: naive.gzipBytes }, manifests },
  };
}

/**
 * What the bench measures, built once per run from the current source (build/main.ts buildAll, in memory) and
 * written to a temporary folder laid out as `npm run build` lays out dist/: the figures belong to the source as it
 * is, and a build running at the same time in the shared tree cannot swap a bundle under the bench.
 */
import * as esbuild from 'esbuild';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { gzipSync } from 'zlib';
import { discoverFunctions, type DiscoveredFunction } from '../../build/discover';
import { buildAll, ROOT, type BuildResult } from '../../build/main';

export interface BuiltFile {
  readonly path: string;
  readonly bytes: number;
  readonly gzipBytes: number;
}

export interface Artifacts {
  readonly dir: string;
  readonly build: BuildResult;
  readonly functions: readonly DiscoveredFunction[];
  /** Like dist/functions: `<name>.js` per function (KUBELESS_INSTALL_VOLUME). */
  readonly functionsDir: string;
  /** Like dist/runtime/kubeless-runtime.js. */
  readonly runtimePath: string;
  /** bench/probe/cold-start.ts as plain JavaScript for Node 12+. */
  readonly probePath: string;
  /** A `node -r` preload that ends a long-lived child (a runtime) once the bench is gone, even killed. */
  readonly exitWithParentPath: string;
  bundlePath(name: string): string;
  /** The naive build of delete-pod with the full @kubernetes/client-node, built on first use. */
  naive(): Promise<BuiltFile>;
  /** The seed-like delete-pod (bench/naive/seed-delete-pod.ts), the storm's baseline, built on first use. */
  seed(): Promise<BuiltFile>;
  remove(): void;
}

export const NAIVE_ENTRY = path.join(ROOT, 'bench', 'naive', 'delete-pod.ts');
export const SEED_ENTRY = path.join(ROOT, 'bench', 'naive', 'seed-delete-pod.ts');
export const PROBE_ENTRY = path.join(ROOT, 'bench', 'probe', 'cold-start.ts');
export const CLIENT_NODE_VERSION = (
  JSON.parse(readFileSync(path.join(ROOT, 'node_modules', '@kubernetes', 'client-node', 'package.json'), 'utf8')) as { version: string }
).version;

export function gzipBytes(code: string | Buffer): number {
  return gzipSync(code, { level: 9 }).length;
}

/** `pod-action` or `forwarder`: only pod actions take an alert about a pod straight from Falcosidekick. */
export function kindOf(f: DiscoveredFunction): string {
  return (f.descriptor as { kind?: string }).kind ?? 'unknown';
}

const EXIT_WITH_PARENT = `'use strict';
// Preloaded by the bench into the processes it serves functions with: once the bench is gone (even killed, when it
// cannot stop its children), this process is adopted by another parent, and ends.
const parent = process.ppid;
setInterval(() => { if (process.ppid !== parent) process.exit(1); }, 500).unref();
`;

export async function buildArtifacts(): Promise<Artifacts> {
  const build = await buildAll();
  const functions = discoverFunctions(ROOT);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'falco-response-bench-'));
  const functionsDir = path.join(dir, 'functions');
  mkdirSync(functionsDir);
  mkdirSync(path.join(dir, 'runtime'));
  for (const b of build.bundles) writeFileSync(path.join(functionsDir, `${b.name}.js`), b.code);
  const runtimePath = path.join(dir, 'runtime', 'kubeless-runtime.js');
  writeFileSync(runtimePath, build.runtime.code);
  const probePath = path.join(dir, 'cold-start.js');
  const probe = await esbuild.build({ entryPoints: [PROBE_ENTRY], bundle: false, platform: 'node', format: 'cjs', target: 'node12', write: false, logLevel: 'silent' });
  writeFileSync(probePath, probe.outputFiles[0].text);
  const exitWithParentPath = path.join(dir, 'exit-with-parent.js');
  writeFileSync(exitWithParentPath, EXIT_WITH_PARENT);
  let naive: Promise<BuiltFile> | undefined;
  let seed: Promise<BuiltFile> | undefined;
  return {
    dir,
    build,
    functions,
    functionsDir,
    runtimePath,
    probePath,
    exitWithParentPath,
    bundlePath: (name) => path.join(functionsDir, `${name}.js`),
    naive: () => (naive ??= buildNaive(NAIVE_ENTRY, path.join(dir, 'naive'))),
    seed: () => (seed ??= buildNaive(SEED_ENTRY, path.join(dir, 'seed'))),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The usual way to build it: everything bundled and minified, for the oldest Node Kubeless runs (nodejs14). */
async function buildNaive(entry: string, outdir: string): Promise<BuiltFile> {
  const result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node14',
    minify: true,
    legalComments: 'none',
    write: false,
    logLevel: 'silent',
  });
  const code = result.outputFiles[0].contents;
  mkdirSync(outdir, { recursive: true });
  const file = path.join(outdir, 'delete-pod.js');
  writeFileSync(file, code);
  return { path: file, bytes: code.length, gzipBytes: gzipBytes(Buffer.from(code)) };
}

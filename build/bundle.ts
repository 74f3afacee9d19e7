import * as esbuild from 'esbuild';
import { sha256 } from '../lib/hash';

/** Each bundle must stay far below what a ConfigMap and a client-side `kubectl apply` can hold. */
export const BUNDLE_BUDGET_BYTES = 100 * 1024;

export interface Bundle {
  readonly name: string;
  readonly code: string;
  readonly bytes: number;
  readonly sha256: string;
}

/**
 * One self-contained CommonJS file for Node 12+. `mainFields: module,main` takes the ES builds of io-ts and fp-ts,
 * which esbuild can tree-shake. Local names are shortened, but `keepNames` keeps every function's and class's own
 * name, which is what a stack trace in `kubectl logs` shows of a one-line bundle: 23% smaller (network-isolate 98.4
 * to 75.6 KiB), the same traces.
 */
export async function bundle(name: string, entry: string, banner: string): Promise<Bundle> {
  const result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node12',
    mainFields: ['module', 'main'],
    minifySyntax: true,
    minifyWhitespace: true,
    minifyIdentifiers: true,
    keepNames: true,
    legalComments: 'none',
    banner: { js: banner },
    write: false,
    logLevel: 'silent',
  });
  const code = result.outputFiles[0].text;
  return { name, code, bytes: Buffer.byteLength(code, 'utf8'), sha256: sha256(code, 'hex') };
}

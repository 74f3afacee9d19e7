import * as esbuild from 'esbuild';
import { sha256 } from '../lib/hash';

/**
 * Each bundle must stay far below what a ConfigMap and a client-side `kubectl apply` can hold. 110 KiB while io-ts's
 * classic codecs (23.5 KB of each bundle) are still in: coalescing, the audit Events' queue and the metrics took
 * network-isolate from 100.8 KB to 106.8 KB.
 */
export const BUNDLE_BUDGET_BYTES = 110 * 1024;

export interface Bundle {
  readonly name: string;
  readonly code: string;
  readonly bytes: number;
  readonly sha256: string;
}

/**
 * One self-contained CommonJS file for Node 12+. `mainFields: module,main` takes the ES builds of io-ts and fp-ts,
 * which esbuild can tree-shake. Identifiers are kept (only syntax and whitespace are minified) so that stack traces
 * in `kubectl logs` stay readable.
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
    legalComments: 'none',
    banner: { js: banner },
    write: false,
    logLevel: 'silent',
  });
  const code = result.outputFiles[0].text;
  return { name, code, bytes: Buffer.byteLength(code, 'utf8'), sha256: sha256(code, 'hex') };
}

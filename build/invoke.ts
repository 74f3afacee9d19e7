/**
 * `npm run invoke -- <function-or-url> <alert.json>`: sends an alert exactly as Falcosidekick's Kubeless output does
 * (shared/PROTOCOLS.md section 3) and prints the status and the answer. A function name is looked up among those
 * `npm run serve` runs; a URL is used as it is. Exits 0 on a 2xx answer, 1 otherwise.
 */
import { randomUUID } from 'crypto';
import { existsSync, readFileSync } from 'fs';
import * as http from 'http';
import * as https from 'https';
import * as path from 'path';
import { isDns1123Label } from '../lib/names';
import { CONFIG_FILE, loadConfig } from './config';
import { DIST, ROOT } from './main';
import { SERVE_STATE } from './serve';

export class InvokeError extends Error {
  override name = 'InvokeError';
}

export interface InvokeOptions {
  /** A function served by `npm run serve`, or an http(s) URL. */
  readonly target: string;
  readonly alertFile: string;
  /** The event-namespace header: the function's namespace, as Falcosidekick sends it; default from falco-response.yaml. */
  readonly namespace?: string;
  readonly eventId?: string;
  readonly timeoutMs?: number;
  readonly root?: string;
  readonly dist?: string;
}

export interface InvokeResult {
  readonly url: string;
  readonly eventId: string;
  readonly status: number;
  readonly statusText: string;
  readonly body: string;
  readonly durationMs: number;
}

/** The URL of a function name (from serve's state file) or of a URL given as it is. */
export function targetUrl(target: string, dist: string = DIST): URL {
  if (/^https?:\/\//.test(target)) {
    try {
      return new URL(target);
    } catch {
      throw new InvokeError(`${JSON.stringify(target)} is not a URL`);
    }
  }
  if (!isDns1123Label(target)) throw new InvokeError(`${JSON.stringify(target)} is neither a function name nor an http(s) URL`);
  const state = path.join(dist, SERVE_STATE);
  const served = existsSync(state) ? (JSON.parse(readFileSync(state, 'utf8')) as { functions?: Record<string, string> }).functions ?? {} : {};
  const url = served[target];
  if (url === undefined) {
    throw new InvokeError(`${target} is not being served: start \`npm run serve -- ${target}\` (or --all), or give its URL`);
  }
  return new URL(url);
}

/** The body Falcosidekick sends in-cluster: the JSON text, then a newline (the file's text is kept byte for byte). */
export function alertBody(file: string): Buffer {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new InvokeError(`cannot read ${file}: ${(error as Error).message}`);
  }
  try {
    JSON.parse(text);
  } catch (error) {
    throw new InvokeError(`${file} is not JSON: ${(error as Error).message}`);
  }
  return Buffer.from(`${text.replace(/\s+$/, '')}\n`, 'utf8');
}

export async function invoke(options: InvokeOptions): Promise<InvokeResult> {
  const root = options.root ?? ROOT;
  const url = targetUrl(options.target, options.dist ?? DIST);
  const body = alertBody(options.alertFile);
  const eventId = options.eventId ?? randomUUID();
  const namespace = options.namespace ?? loadConfig(path.join(root, CONFIG_FILE)).namespace;
  const headers = {
    'Content-Type': 'application/json',
    'User-Agent': 'Falcosidekick',
    'event-id': eventId,
    'event-type': 'falco',
    'event-namespace': namespace,
    'Content-Length': String(body.length),
  };
  const started = process.hrtime.bigint();
  const timeoutMs = options.timeoutMs ?? 60000;
  const answer = await new Promise<{ status: number; statusText: string; body: string }>((resolve, reject) => {
    const request = (url.protocol === 'https:' ? https : http).request(url, { method: 'POST', headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, statusText: response.statusMessage ?? '', body: Buffer.concat(chunks).toString('utf8') }),
      );
      response.on('error', reject);
    });
    request.setTimeout(timeoutMs, () => request.destroy(new InvokeError(`no answer from ${url.href} within ${timeoutMs} ms`)));
    request.on('error', (error) => reject(error instanceof InvokeError ? error : new InvokeError(`POST ${url.href} failed: ${error.message}`)));
    request.end(body);
  });
  return { url: url.href, eventId, ...answer, durationMs: Number(process.hrtime.bigint() - started) / 1e6 };
}

/** The answer as printed: pretty JSON when it is JSON. */
export function formatAnswer(result: InvokeResult): string {
  let body = result.body;
  try {
    body = JSON.stringify(JSON.parse(result.body), null, 2);
  } catch {
    // not JSON (the runtime's own "Internal Server Error", say): printed as it came
  }
  return `POST ${result.url} (event-id ${result.eventId})\nHTTP ${result.status} ${result.statusText} in ${result.durationMs.toFixed(1)} ms\n${body}\n`;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.length !== 2) {
    process.stderr.write('usage: npm run invoke -- <function-or-url> <alert.json>   (e.g. forwarder test/fixtures/alerts/terminal-shell.json)\n');
    process.exit(2);
  }
  const result = await invoke({ target: args[0], alertFile: args[1] });
  process.stdout.write(formatAnswer(result));
  process.exitCode = result.status >= 200 && result.status < 300 ? 0 : 1;
}

if (require.main === module) {
  main().catch((error: Error) => {
    process.stderr.write(`npm run invoke: ${error.message}\n`);
    process.exit(1);
  });
}

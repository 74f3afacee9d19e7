/**
 * One cold start, in a fresh process of any Node from 12 on (bench/lib/artifacts.ts compiles this file alone, no
 * bundling, for node12): the time of require() of a bundle and, when an alert is given, the time until its first
 * alert is answered, both counted from before require().
 *   usage: node cold-start.js <bundle.js> <alert.json | ->
 *   prints one line: BENCH_COLD {"requireMs":…,"firstAlertMs":…,"status":…,"outcome":…}
 */
import { readFileSync } from 'fs';

type Handler = (event: unknown, context: unknown) => unknown;

const [bundle, alertFile] = process.argv.slice(2);
// Reading and parsing the body is the runtime's work, not the function's: done before the clock starts.
const data: unknown = alertFile === '-' ? undefined : JSON.parse(readFileSync(alertFile, 'utf8'));
const ms = (t: [number, number]) => (t[0] * 1e9 + t[1]) / 1e6;

function print(result: Record<string, unknown>): never {
  process.stdout.write(`\nBENCH_COLD ${JSON.stringify(result)}\n`);
  process.exit(0);
}

const start = process.hrtime();
// eslint-disable-next-line @typescript-eslint/no-require-imports
const loaded = require(bundle) as Handler | Record<string, unknown>;
const requireMs = ms(process.hrtime(start));
if (data === undefined) print({ requireMs });

const handler = (typeof loaded === 'function' ? loaded : loaded[process.env.FUNC_HANDLER ?? 'handler']) as Handler;
const response = {
  statusCode: 200,
  status(code: number) {
    this.statusCode = code;
    return this;
  },
};
// The event and context the Kubeless runtime builds for a Falcosidekick POST (shared/PROTOCOLS.md sections 1, 3).
const event = {
  data,
  'event-id': '6f1d3c9e-1b7a-4c2d-9e8f-0a1b2c3d4e5f',
  'event-type': 'falco',
  'event-time': undefined,
  'event-namespace': 'falco-response',
  extensions: { request: {}, response },
};
const context = { 'function-name': 'handler', timeout: 30, runtime: 'nodejs14', 'memory-limit': '128Mi' };
Promise.resolve(handler(event, context)).then(
  (body) => {
    const outcome = (body as { status?: unknown } | undefined)?.status;
    print({ requireMs, firstAlertMs: ms(process.hrtime(start)), status: response.statusCode, outcome, body });
  },
  (error: Error) => print({ requireMs, error: String(error.message) }),
);

/**
 * A Kubeless-compatible Node.js runtime (shared/PROTOCOLS.md section 1) with no dependency beyond Node itself, so it
 * bundles to one small file that runs on Node 12 and later. It serves a function bundle exactly as Kubeless's
 * nodejs runtime does: same environment, event and context, body parsing, status mapping, /healthz and /metrics.
 * One deliberate difference: no CORS headers and no OPTIONS preflight answers; no browser needs to read these answers.
 */
import * as http from 'http';
import * as path from 'path';

/** MOD_NAME, FUNC_HANDLER, FUNC_TIMEOUT, FUNC_PORT, FUNC_RUNTIME, FUNC_MEMORY_LIMIT, REQ_MB_LIMIT, KUBELESS_INSTALL_VOLUME. */
export type RuntimeEnv = Readonly<Record<string, string | undefined>>;

type Handler = (event: unknown, context: unknown) => unknown;

interface Settings {
  modName: string;
  funcHandler: string;
  timeoutSeconds: number;
  port: number;
  runtime: string;
  memoryLimit: string;
  bodyLimitBytes: number;
  modulePath: string;
}

export function settingsOf(env: RuntimeEnv): Settings {
  const modName = env.MOD_NAME ?? '';
  const funcHandler = env.FUNC_HANDLER ?? '';
  if (modName === '' || funcHandler === '') throw new Error('MOD_NAME and FUNC_HANDLER must be set');
  const volume = env.KUBELESS_INSTALL_VOLUME ?? '/kubeless';
  return {
    modName,
    funcHandler,
    timeoutSeconds: Number(env.FUNC_TIMEOUT ?? '180') || 180,
    port: Number(env.FUNC_PORT ?? '8080'),
    runtime: env.FUNC_RUNTIME ?? '',
    memoryLimit: env.FUNC_MEMORY_LIMIT ?? '',
    bodyLimitBytes: (Number(env.REQ_MB_LIMIT ?? '1') || 1) * 1024 * 1024,
    modulePath: path.join(volume, `${modName}.js`),
  };
}

/** As Kubeless: `module.exports` itself when it is a function, else `exports[FUNC_HANDLER]`. */
export function loadHandler(modulePath: string, funcHandler: string): Handler {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const loaded = require(modulePath) as Handler | Record<string, unknown>;
  const handler = typeof loaded === 'function' ? loaded : loaded[funcHandler];
  if (typeof handler !== 'function') throw new Error(`${modulePath} exports no function named '${funcHandler}'`);
  return handler as Handler;
}

/** The bits of Express's response object a Kubeless function may use. */
type ExpressLikeResponse = http.ServerResponse & { status(code: number): ExpressLikeResponse };

/**
 * Prometheus metrics with the names and labels Kubeless's runtime exposes: one series per HTTP method, labelled
 * `method="<MOD_NAME>-<HTTP method>"` (PROTOCOLS section 1).
 */
class Metrics {
  private readonly buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
  private readonly series = new Map<string, { calls: number; failures: number; counts: number[]; sum: number }>();

  constructor(private readonly modName: string) {}

  private of(method: string) {
    const key = `${this.modName}-${method}`;
    let entry = this.series.get(key);
    if (entry === undefined) {
      entry = { calls: 0, failures: 0, counts: this.buckets.map(() => 0), sum: 0 };
      this.series.set(key, entry);
    }
    return entry;
  }

  observe(method: string, seconds: number, failed: boolean): void {
    const entry = this.of(method);
    entry.calls++;
    if (failed) entry.failures++;
    entry.sum += seconds;
    this.buckets.forEach((bound, i) => {
      if (seconds <= bound) entry.counts[i]++;
    });
  }

  render(): string {
    const duration = ['# HELP function_duration_seconds Duration of user function in seconds', '# TYPE function_duration_seconds histogram'];
    const calls = ['# HELP function_calls_total Number of calls to user function', '# TYPE function_calls_total counter'];
    const failures = ['# HELP function_failures_total Number of exceptions in user function', '# TYPE function_failures_total counter'];
    for (const [key, entry] of this.series) {
      const l = `method="${key}"`;
      duration.push(
        ...this.buckets.map((b, i) => `function_duration_seconds_bucket{le="${b}",${l}} ${entry.counts[i]}`),
        `function_duration_seconds_bucket{le="+Inf",${l}} ${entry.calls}`,
        `function_duration_seconds_sum{${l}} ${entry.sum}`,
        `function_duration_seconds_count{${l}} ${entry.calls}`,
      );
      calls.push(`function_calls_total{${l}} ${entry.calls}`);
      failures.push(`function_failures_total{${l}} ${entry.failures}`);
    }
    return `${[...duration, ...calls, ...failures].join('\n')}\n`;
  }
}

function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer | 'too-large'> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(tooLarge ? 'too-large' : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Kubeless's body parsing: JSON for application/json, text for any other non-empty body, `{}` when empty. */
export function parseData(body: Buffer, contentType: string | undefined): { ok: true; data: unknown } | { ok: false } {
  if (body.length === 0) return { ok: true, data: {} };
  if ((contentType ?? '').toLowerCase().split(';')[0].trim() === 'application/json') {
    try {
      return { ok: true, data: JSON.parse(body.toString('utf8')) as unknown };
    } catch {
      return { ok: false };
    }
  }
  return { ok: true, data: body.toString('utf8') };
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function accessLog(req: http.IncomingMessage, res: http.ServerResponse, length: number): void {
  // Apache combined log format, as Kubeless's runtime (morgan 'combined') writes it.
  const date = new Date().toUTCString();
  const ua = header(req, 'user-agent') ?? '-';
  const referer = header(req, 'referer') ?? '-';
  process.stdout.write(
    `${req.socket.remoteAddress ?? '-'} - - [${date}] "${req.method ?? '-'} ${req.url ?? '-'} HTTP/${req.httpVersion}" ${res.statusCode} ${length} "${referer}" "${ua}"\n`,
  );
}

export interface Runtime {
  readonly server: http.Server;
  readonly port: number;
  close(): Promise<void>;
  /**
   * The shutdown a pod needs: readiness drops at once (/healthz answers 503) while calls are still served for
   * `delayMs`, the time the Services take to stop sending new ones; then the server stops listening and this resolves
   * once the calls in flight have ended (at most FUNC_TIMEOUT later).
   */
  drain(delayMs: number): Promise<void>;
}

/** Starts the runtime; `port: 0` picks a free port (for tests). */
export async function startRuntime(env: RuntimeEnv, overrides: { port?: number; host?: string } = {}): Promise<Runtime> {
  const settings = settingsOf(env);
  const handler = loadHandler(settings.modulePath, settings.funcHandler);
  const metrics = new Metrics(settings.modName);
  const context = {
    'function-name': settings.funcHandler,
    timeout: settings.timeoutSeconds,
    runtime: settings.runtime,
    'memory-limit': settings.memoryLimit,
  };

  // Set by drain(): the pod is on its way out.
  let draining = false;
  const server = http.createServer((req, res) => {
    const send = (status: number, body: string | Buffer, contentType: string | undefined) => {
      const buffer = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
      if (!res.headersSent) {
        res.statusCode = res.statusCode === 200 ? status : res.statusCode;
        if (contentType !== undefined) res.setHeader('Content-Type', contentType);
        res.setHeader('Content-Length', buffer.length);
      }
      res.end(buffer);
      accessLog(req, res, buffer.length);
    };
    const url = (req.url ?? '/').split('?')[0];
    // No connection is kept for a next call that would find the server gone.
    if (draining) res.setHeader('Connection', 'close');
    if (req.method === 'GET' && url === '/healthz') {
      return draining ? send(503, 'Draining', 'text/html; charset=utf-8') : send(200, 'OK', 'text/html; charset=utf-8');
    }
    if (req.method === 'GET' && url === '/metrics') return send(200, metrics.render(), 'text/plain; version=0.0.4');
    void serveFunction(req, res as ExpressLikeResponse, send);
  });

  async function serveFunction(
    req: http.IncomingMessage,
    res: ExpressLikeResponse,
    send: (status: number, body: string | Buffer, contentType: string | undefined) => void,
  ): Promise<void> {
    const started = process.hrtime();
    const seconds = () => {
      const [s, ns] = process.hrtime(started);
      return s + ns / 1e9;
    };
    const body = await readBody(req, settings.bodyLimitBytes);
    if (body === 'too-large') return send(413, 'Payload Too Large', 'text/html; charset=utf-8');
    const parsed = parseData(body, header(req, 'content-type'));
    const method = req.method ?? 'POST';
    if (!parsed.ok) {
      // Kubeless's body parser fails before the function runs; its metrics count a failed call all the same.
      metrics.observe(method, seconds(), true);
      return send(500, 'Internal Server Error', 'text/html; charset=utf-8');
    }
    res.status = (code: number) => {
      res.statusCode = code;
      return res;
    };
    // As Kubeless's Express (body-parser raw): the body's bytes stay on the request, so that a function can pass them
    // on exactly (the forwarder does: JSON.parse rounds evt.time, above 2^53).
    (req as http.IncomingMessage & { body?: Buffer }).body = body;
    const event = {
      data: parsed.data,
      'event-id': header(req, 'event-id'),
      'event-type': header(req, 'event-type'),
      'event-time': header(req, 'event-time'),
      'event-namespace': header(req, 'event-namespace'),
      extensions: { request: req, response: res },
    };
    try {
      const result = await Promise.resolve(handler(event, context));
      metrics.observe(method, seconds(), false);
      if (res.writableEnded) return;
      // As Kubeless: a string or nothing is written as it is, with no Content-Type; an object as JSON.
      if (result === undefined) send(200, '', undefined);
      else if (typeof result === 'string') send(200, result, undefined);
      else if (Buffer.isBuffer(result)) send(200, result, 'application/octet-stream');
      else send(200, JSON.stringify(result), 'application/json; charset=utf-8');
    } catch (error) {
      metrics.observe(method, seconds(), true);
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      res.statusCode = 500;
      send(500, 'Internal Server Error', 'text/html; charset=utf-8');
    }
  }

  const port = overrides.port ?? settings.port;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, overrides.host ?? '0.0.0.0', () => resolve());
  });
  const address = server.address();
  return {
    server,
    port: typeof address === 'object' && address !== null ? address.port : port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    drain: (delayMs: number) => {
      draining = true;
      return new Promise<void>((resolve) => {
        setTimeout(() => {
          const bound = setTimeout(resolve, settings.timeoutSeconds * 1000);
          bound.unref();
          server.close(() => {
            clearTimeout(bound);
            resolve();
          });
          // Node 18.2 and later: idle keep-alive connections would hold close() until they time out (5 s).
          (server as { closeIdleConnections?: () => void }).closeIdleConnections?.();
        }, delayMs);
      });
    },
  };
}

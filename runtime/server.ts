/**
 * A Kubeless-compatible Node.js runtime (shared/PROTOCOLS.md section 1) with no dependency beyond Node itself, so it
 * bundles to one small file that runs on Node 12 and later. It serves a function bundle exactly as Kubeless's
 * nodejs runtime does: same environment, event and context, body parsing, status mapping, /healthz and /metrics.
 * One deliberate difference: no CORS headers and no OPTIONS preflight answers; no browser needs to read these answers.
 */
import * as http from 'http';
import type * as net from 'net';
import * as path from 'path';
import { readKubelessEnv, type KubelessSettings } from '../lib/kubeless';
import { jsonLogger, type Fields, type Logger } from '../lib/log';
import { REGISTRY_KEY, TextRegistry, type Registry } from '../lib/metrics';
import { printable } from '../lib/text';

/** The Kubeless environment (lib/kubeless.ts) and the runtime's own limits. */
export type RuntimeEnv = Readonly<Record<string, string | undefined>>;

/** A Kubeless handler; ours also has `drain()`, which ends the work left after the answers (lib/entry.ts). */
type Handler = ((event: unknown, context: unknown) => unknown) & { drain?: unknown };

interface Settings extends KubelessSettings {
  modulePath: string;
}

export function settingsOf(env: RuntimeEnv): Settings {
  const settings = readKubelessEnv(env);
  return { ...settings, modulePath: path.join(settings.installVolume, `${settings.modName}.js`) };
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

  constructor(
    private readonly modName: string,
    /** The function's own metrics (lib/metrics.ts), rendered after these. */
    private readonly functions: TextRegistry,
  ) {}

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
    return `${[...duration, ...calls, ...failures].join('\n')}\n${this.functions.render()}`;
  }
}

/** How a request's body ended: read whole, or cut short for one of these reasons (each answered differently). */
type BodyResult =
  | { readonly kind: 'read'; readonly bytes: Buffer }
  | { readonly kind: 'too-large'; readonly received: number }
  | { readonly kind: 'too-slow'; readonly received: number }
  | { readonly kind: 'aborted'; readonly received: number; readonly cause: string };

/**
 * Reads a body into memory, at most `limit` bytes and for at most `timeoutMs`. The promise settles exactly once,
 * whatever the client does: `end`, a body past the limit (at once, not after draining it: a Content-Length past it
 * is refused before any byte is read), the deadline, or the connection lost mid-body. Node 15 and later report the
 * last as an `error` ('aborted'), Node 12 and 14 only as `aborted` and `close`: all three are listened to, so no
 * version leaves the promise pending or rejects it.
 */
function readBody(req: http.IncomingMessage, limit: number, timeoutMs: number): Promise<BodyResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let settled = false;
    const settle = (result: BodyResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.removeListener('data', onData);
      // Nothing more is read: a body cut short is answered, then its connection closed.
      if (result.kind !== 'read') req.pause();
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > limit) settle({ kind: 'too-large', received });
      else chunks.push(chunk);
    };
    const timer = setTimeout(() => settle({ kind: 'too-slow', received }), timeoutMs);
    const declared = Number(header(req, 'content-length'));
    if (declared > limit) return settle({ kind: 'too-large', received });
    // A pipelined request served late may have lost its connection already: its 'aborted' and 'close' are past.
    if (req.aborted) return settle({ kind: 'aborted', received, cause: 'aborted' });
    req.on('data', onData);
    req.once('end', () => settle({ kind: 'read', bytes: Buffer.concat(chunks) }));
    req.once('aborted', () => settle({ kind: 'aborted', received, cause: 'aborted' }));
    req.once('error', (error: Error) => settle({ kind: 'aborted', received, cause: error.message }));
    req.once('close', () => settle({ kind: 'aborted', received, cause: 'closed' }));
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

/** `multipart/form-data; boundary=...` and any other `multipart/*`, as type-is's `req.is('multipart/*')` matches. */
function isMultipart(contentType: string | undefined): boolean {
  return /^multipart\/[!#$%&'*+.^_`|~0-9a-z-]+$/.test((contentType ?? '').toLowerCase().split(';')[0].trim());
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Request text as a combined-log writer puts it between quotes (Apache's escapes `"` and `\`), then made printable:
 * a User-Agent or a URL is the caller's, any caller's, and must not forge or hide a line of the log.
 */
export function logText(text: string): string {
  return printable(text.replace(/["\\]/g, (c) => `\\${c}`));
}

function accessLog(req: http.IncomingMessage, res: http.ServerResponse, length: number): void {
  // Apache combined log format, as Kubeless's runtime (morgan 'combined') writes it.
  const date = new Date().toUTCString();
  const ua = logText(header(req, 'user-agent') ?? '-');
  const referer = logText(header(req, 'referer') ?? '-');
  const request = logText(`${req.method ?? '-'} ${req.url ?? '-'} HTTP/${req.httpVersion}`);
  process.stdout.write(`${req.socket.remoteAddress ?? '-'} - - [${date}] "${request}" ${res.statusCode} ${length} "${referer}" "${ua}"\n`);
}

/** Writes an answer and its access-log line; `close` asks the client to open a new connection for the next request. */
function send(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  status: number,
  body: string | Buffer,
  contentType: string | undefined,
  close = false,
): void {
  const buffer = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  if (!res.headersSent) {
    res.statusCode = res.statusCode === 200 ? status : res.statusCode;
    if (contentType !== undefined) res.setHeader('Content-Type', contentType);
    res.setHeader('Content-Length', buffer.length);
    if (close) res.setHeader('Connection', 'close');
  }
  res.end(buffer);
  accessLog(req, res, buffer.length);
}

export interface Runtime {
  readonly server: http.Server;
  readonly port: number;
  close(): Promise<void>;
  /**
   * The shutdown a pod needs: readiness drops at once (/healthz answers 503) while calls are still served for
   * `delayMs`, the time the Services take to stop sending new ones; then the server stops listening and this resolves
   * once the calls in flight have ended and the function's `drain()` (its audit Events) too, at most FUNC_TIMEOUT later.
   */
  drain(delayMs: number): Promise<void>;
}

/** Everything a client may hold: each bound comes from its environment variable, or the default. */
export interface Limits {
  /** REQ_HEADERS_TIMEOUT (seconds): from a connection's opening to its first request's complete headers. */
  readonly headersTimeoutMs: number;
  /** REQ_BODY_TIMEOUT (seconds): from a request's headers to the end of its body; past it, 408. */
  readonly bodyTimeoutMs: number;
  /** KEEPALIVE_TIMEOUT (seconds): how long a connection may sit idle after an answer. */
  readonly keepAliveTimeoutMs: number;
  /**
   * MAX_CONNECTIONS: open connections; past it a new one takes the place of the oldest with no request, else of the
   * oldest with no request at work (its body still arriving).
   */
  readonly maxConnections: number;
  /** MAX_PIPELINED_REQUESTS: requests of one connection served at once; past it the runtime stops reading it. */
  readonly maxPipelined: number;
}

export const DEFAULT_LIMITS = {
  REQ_HEADERS_TIMEOUT: 10,
  REQ_BODY_TIMEOUT: 10,
  KEEPALIVE_TIMEOUT: 5,
  MAX_CONNECTIONS: 256,
  MAX_PIPELINED_REQUESTS: 16,
} as const;

function positive(env: RuntimeEnv, name: keyof typeof DEFAULT_LIMITS, what: 'seconds' | 'count'): number {
  const text = env[name];
  if (text === undefined || text.trim() === '') return DEFAULT_LIMITS[name];
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0 || (what === 'count' && !Number.isInteger(value))) {
    const expected = what === 'count' ? 'a whole number above 0' : 'a number of seconds above 0';
    throw new Error(`${name} must be ${expected}, got '${printable(text)}'`);
  }
  return value;
}

export function limitsOf(env: RuntimeEnv): Limits {
  return {
    headersTimeoutMs: positive(env, 'REQ_HEADERS_TIMEOUT', 'seconds') * 1000,
    bodyTimeoutMs: positive(env, 'REQ_BODY_TIMEOUT', 'seconds') * 1000,
    keepAliveTimeoutMs: positive(env, 'KEEPALIVE_TIMEOUT', 'seconds') * 1000,
    maxConnections: positive(env, 'MAX_CONNECTIONS', 'count'),
    maxPipelined: positive(env, 'MAX_PIPELINED_REQUESTS', 'count'),
  };
}

/**
 * Warnings a flood would repeat thousands of times: the first of a kind is written at once, the repeats within the
 * next ten seconds are counted and written as one line when the ten seconds are up. Never silent, never a flood.
 */
class Notices {
  private readonly pending = new Map<string, { repeats: number; message: string; fields: Fields }>();

  constructor(private readonly log: Logger, private readonly windowMs = 10000) {}

  warn(kind: string, message: string, fields: Fields = {}): void {
    const entry = this.pending.get(kind);
    if (entry !== undefined) {
      entry.repeats++;
      entry.message = message;
      entry.fields = fields;
      return;
    }
    this.log.warn(message, fields);
    this.pending.set(kind, { repeats: 0, message, fields });
    setTimeout(() => {
      const ended = this.pending.get(kind);
      this.pending.delete(kind);
      if (ended !== undefined && ended.repeats > 0) {
        this.log.warn(ended.message, { ...ended.fields, repeats: ended.repeats, withinSeconds: this.windowMs / 1000 });
      }
    }, this.windowMs).unref();
  }
}

/** One client connection, as the runtime bounds it. */
interface Connection {
  readonly socket: net.Socket;
  /** Requests whose headers arrived and whose answer has not gone out (pipelined ones included). */
  outstanding: number;
  /** Of those, the ones being served (at most MAX_PIPELINED_REQUESTS); the others wait in `waiting`, in order. */
  serving: number;
  readonly waiting: (() => void)[];
  /** Requests whose body is complete and whose answer has not gone out: work a client is waiting for. */
  working: number;
  /** Whether the runtime stopped reading the socket, while requests wait. */
  paused: boolean;
  /** Closes the connection if no request's headers are complete in time. */
  deadline: NodeJS.Timeout | undefined;
}

const HTML = 'text/html; charset=utf-8';
/** How long a connection cut after a 408 or a 413 stays half-open for its client to read the answer. */
const LINGER_MS = 2000;

/**
 * Closing a socket whose unread bytes wait in the kernel sends a reset, and a client still sending may get the reset
 * instead of the answer; so once an answer with `Connection: close` is written (Node's server then calls
 * destroySoon()), the socket only stops sending, stays unread for LINGER_MS (a lingering close), then is destroyed
 * whatever the client does.
 */
function lingerOnClose(socket: net.Socket): void {
  socket.destroySoon = () => {
    socket.end();
    setTimeout(() => socket.destroy(), LINGER_MS).unref();
  };
}

/** The request's method and path for a log line, printable and short. */
function requestFields(req: http.IncomingMessage): Fields {
  return { method: printable(req.method ?? '-'), url: printable((req.url ?? '-').slice(0, 200)) };
}

/** An error's stack, or what can be said of a thrown value that is no Error (and may not even convert to text). */
function describeError(error: unknown): string {
  try {
    return error instanceof Error ? (error.stack ?? error.message) : String(error);
  } catch {
    return `a thrown value that cannot be written out (${Object.prototype.toString.call(error)})`;
  }
}

/**
 * An error for stderr, as Kubeless writes it (its stack), made inert: each line printable, and the lines after the
 * first indented, so that a message carrying alert text can neither move the terminal nor pass for a line of its own.
 */
function errorText(error: unknown): string {
  return describeError(error)
    .split('\n')
    .map((line, i) => `${i === 0 ? '' : '  '}${printable(line)}`)
    .join('\n');
}

/** Starts the runtime; `port: 0` picks a free port (for tests). */
export async function startRuntime(env: RuntimeEnv, overrides: { port?: number; host?: string } = {}): Promise<Runtime> {
  const settings = settingsOf(env);
  const limits = limitsOf(env);
  // Put before the function loads, so that it counts into the registry this runtime serves on /metrics.
  const holder = globalThis as { [REGISTRY_KEY]?: Registry };
  const functions = new TextRegistry();
  holder[REGISTRY_KEY] = functions;
  const handler = loadHandler(settings.modulePath, settings.funcHandler);
  const metrics = new Metrics(settings.modName, functions);
  const notices = new Notices(jsonLogger({ module: settings.modName }));
  const context = {
    'function-name': settings.funcHandler,
    timeout: settings.timeoutSeconds,
    runtime: settings.runtime,
    'memory-limit': settings.memoryLimit,
  };

  const connections = new Set<Connection>(); // in the order they opened: the first is the oldest
  const connectionOf = new WeakMap<net.Socket, Connection>();

  /** Closes the connection unless a request's headers are complete within `ms` (the timer restarts per request). */
  const awaitHeaders = (connection: Connection, ms: number) => {
    clearTimeout(connection.deadline);
    connection.deadline = setTimeout(() => {
      if (connection.outstanding > 0) return;
      notices.warn('headers-timeout', `a connection sent no complete request within ${ms / 1000} s: closed`);
      connection.socket.destroy();
    }, ms);
  };

  // Set by drain(): the pod is on its way out.
  let draining = false;
  const server = http.createServer((req, res) => {
    // Whatever the client does next, an 'error' on either stream is an event handled here, never a crash.
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    const connection = connectionOf.get(req.socket);
    // The one place a request's promise ends: whatever throws unexpectedly is logged and answered 500.
    const start = (working: () => void): void => {
      handle(req, res as ExpressLikeResponse, working).catch((error: unknown) => {
        process.stderr.write(`the runtime failed to serve ${logText(req.method ?? '-')} ${logText(req.url ?? '-')}: ${errorText(error)}\n`);
        try {
          if (res.headersSent) res.destroy();
          else send(req, res, 500, 'Internal Server Error', HTML);
        } catch {
          req.socket.destroy();
        }
      });
    };
    if (connection === undefined) start(() => undefined);
    else track(connection, res, start);
  });
  // Node's own bounds as well. Not its requestTimeout: Node 12 has none, and Node 14's keeps a timer, and so the
  // socket, for every connection until it fires (a flood of short connections grew past the pod's memory limit);
  // the body deadline of readBody holds on every version.
  server.headersTimeout = limits.headersTimeoutMs;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;

  server.on('connection', (socket: net.Socket) => {
    if (connections.size >= limits.maxConnections) {
      // The oldest that holds no request at all, else the oldest with no request at work: a connection that only
      // opened (the next one of a flood) goes before a call whose body is still arriving.
      let idle: Connection | undefined;
      for (const open of connections) {
        if (open.outstanding === 0) {
          idle = open;
          break;
        }
        if (idle === undefined && open.working === 0) idle = open;
      }
      if (idle === undefined) {
        notices.warn('connections-busy', `${limits.maxConnections} connections are open, each with a request at work (MAX_CONNECTIONS): a new connection is refused`);
        socket.destroy();
        return;
      }
      notices.warn(
        'connections-full',
        `${limits.maxConnections} connections are open (MAX_CONNECTIONS): the oldest with no request at work is closed to take a new one`,
      );
      connections.delete(idle);
      idle.socket.destroy();
    }
    const connection: Connection = { socket, outstanding: 0, serving: 0, waiting: [], working: 0, paused: false, deadline: undefined };
    connections.add(connection);
    connectionOf.set(socket, connection);
    // Node resumes a socket whenever a request's body is read (IncomingMessage's readStart) or an answer is queued
    // (its own backpressure, which watches only what is written): either would undo the pause past
    // MAX_PIPELINED_REQUESTS, so while that pause holds, a resume waits for the answers to go out (see track()).
    const resume = socket.resume.bind(socket);
    socket.resume = () => (connection.paused ? socket : resume());
    awaitHeaders(connection, limits.headersTimeoutMs);
    socket.once('close', () => {
      clearTimeout(connection.deadline);
      connections.delete(connection);
    });
  });

  /**
   * Serves a request of a connection once fewer than MAX_PIPELINED_REQUESTS of that connection are being served;
   * until then it waits, parsed, and the socket is not read any further. Backpressure, not a drop: what a client
   * pipelines past the limit waits in its own socket until answers go out, and each request gets its answer.
   */
  function track(connection: Connection, res: http.ServerResponse, start: (working: () => void) => void): void {
    connection.outstanding++;
    clearTimeout(connection.deadline);
    let state: 'waiting' | 'serving' | 'working' | 'ended' = 'waiting';
    const run = () => {
      if (state !== 'waiting') return;
      state = 'serving';
      connection.serving++;
      start(() => {
        if (state !== 'serving') return;
        state = 'working';
        connection.working++;
      });
    };
    const end = () => {
      if (state === 'ended') return;
      const was = state;
      state = 'ended';
      connection.outstanding--;
      if (was === 'waiting') connection.waiting.splice(connection.waiting.indexOf(run), 1);
      else connection.serving--;
      if (was === 'working') connection.working--;
      while (connection.serving < limits.maxPipelined && connection.waiting.length > 0) connection.waiting.shift()!();
      if (connection.paused && connection.waiting.length === 0) {
        connection.paused = false;
        connection.socket.resume();
      }
      if (connection.outstanding === 0 && !connection.socket.destroyed) {
        // Draining: a connection is not kept for a next call once its calls are answered, also when an answer went
        // out before the drain began with keep-alive (the exit would otherwise wait for its client or its timeout).
        if (draining) connection.socket.end();
        awaitHeaders(connection, limits.keepAliveTimeoutMs + limits.headersTimeoutMs);
      }
    };
    res.once('finish', end);
    res.once('close', end);
    if (connection.serving < limits.maxPipelined) return run();
    connection.waiting.push(run);
    if (!connection.paused) {
      connection.paused = true;
      connection.socket.pause();
    }
  }

  async function handle(req: http.IncomingMessage, res: ExpressLikeResponse, working: () => void): Promise<void> {
    const url = (req.url ?? '/').split('?')[0];
    // Draining: no connection is kept for a next call that would find the server gone.
    if (draining) res.setHeader('Connection', 'close');
    if (req.method === 'GET' && url === '/healthz') return draining ? send(req, res, 503, 'Draining', HTML) : send(req, res, 200, 'OK', HTML);
    if (req.method === 'GET' && url === '/metrics') return send(req, res, 200, metrics.render(), 'text/plain; version=0.0.4');
    await serveFunction(req, res, working);
  }

  /** Answers a request whose body was cut short, then closes its connection: the rest of the body is never read. */
  function cut(req: http.IncomingMessage, res: http.ServerResponse, status: number, text: string): void {
    lingerOnClose(req.socket);
    send(req, res, status, text, HTML, true);
  }

  async function serveFunction(req: http.IncomingMessage, res: ExpressLikeResponse, working: () => void): Promise<void> {
    const started = process.hrtime();
    const seconds = () => {
      const [s, ns] = process.hrtime(started);
      return s + ns / 1e9;
    };
    const method = req.method ?? 'POST';
    let data: unknown;
    let body: Buffer | Record<string, never>;
    if (isMultipart(header(req, 'content-type'))) {
      // As Kubeless's runtime (kubeless/runtimes stable/nodejs/kubeless.js): its raw parser skips `multipart/*`
      // (`type: req => !req.is('multipart/*')`), so does its JSON parser (application/json only) and its urlencoded
      // one; body-parser 1.x then leaves `req.body = req.body || {}` (lib/types/raw.js), and the handler gets
      // `data = req.body`, i.e. `{}`, whatever the body holds. So here: `{}` as data and as request.body, the body
      // unread, and the connection closed after the answer rather than drained.
      res.setHeader('Connection', 'close');
      lingerOnClose(req.socket);
      data = {};
      body = {};
    } else {
      const result = await readBody(req, settings.bodyLimitBytes, limits.bodyTimeoutMs);
      switch (result.kind) {
        case 'too-large':
          notices.warn('body-too-large', `a request body passed REQ_MB_LIMIT (${settings.bodyLimitBytes} bytes): 413, connection closed`, requestFields(req));
          return cut(req, res, 413, 'Payload Too Large');
        case 'too-slow':
          notices.warn(
            'body-too-slow',
            `a request body did not arrive within REQ_BODY_TIMEOUT (${limits.bodyTimeoutMs / 1000} s, ${result.received} bytes received): 408, connection closed`,
            requestFields(req),
          );
          return cut(req, res, 408, 'Request Timeout');
        case 'aborted':
          notices.warn(
            'body-aborted',
            `the client went away after ${result.received} bytes of a request body (${printable(result.cause)}): the function was not called`,
            requestFields(req),
          );
          return;
        case 'read':
          break;
      }
      const parsed = parseData(result.bytes, header(req, 'content-type'));
      if (!parsed.ok) {
        // Kubeless's body parser fails before the function runs; its metrics count a failed call all the same.
        metrics.observe(method, seconds(), true);
        return send(req, res, 500, 'Internal Server Error', HTML);
      }
      data = parsed.data;
      body = result.bytes;
    }
    working();
    res.status = (code: number) => {
      res.statusCode = code;
      return res;
    };
    // As Kubeless's Express (body-parser raw): the body's bytes stay on the request, so that a function can pass them
    // on exactly (the forwarder does: JSON.parse rounds evt.time, above 2^53).
    (req as http.IncomingMessage & { body?: unknown }).body = body;
    const event = {
      data,
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
      if (result === undefined) send(req, res, 200, '', undefined);
      else if (typeof result === 'string') send(req, res, 200, result, undefined);
      else if (Buffer.isBuffer(result)) send(req, res, 200, result, 'application/octet-stream');
      else send(req, res, 200, JSON.stringify(result), 'application/json; charset=utf-8');
    } catch (error) {
      metrics.observe(method, seconds(), true);
      process.stderr.write(`${errorText(error)}\n`);
      res.statusCode = 500;
      send(req, res, 500, 'Internal Server Error', HTML);
    }
  }

  const closeIdle = () => {
    // Idle keep-alive connections would hold close() open until they time out.
    for (const connection of connections) if (connection.outstanding === 0) connection.socket.destroy();
  };
  const port = overrides.port ?? settings.port;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, overrides.host ?? '0.0.0.0', () => resolve());
  });
  const address = server.address();
  return {
    server,
    port: typeof address === 'object' && address !== null ? address.port : port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        closeIdle();
      }),
    drain: (delayMs: number) => {
      draining = true;
      return new Promise<void>((resolve) => {
        setTimeout(() => {
          const bound = setTimeout(resolve, settings.timeoutSeconds * 1000);
          bound.unref();
          server.close(() => {
            // The work the function left after its answers (its audit Events), within the same bound.
            const left = typeof handler.drain === 'function' ? Promise.resolve((handler.drain as () => unknown)()) : Promise.resolve();
            left.then(
              () => (clearTimeout(bound), resolve()),
              () => (clearTimeout(bound), resolve()),
            );
          });
          closeIdle();
        }, delayMs);
      });
    },
  };
}

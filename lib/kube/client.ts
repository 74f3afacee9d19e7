import * as http from 'http';
import * as https from 'https';
import type { Connection } from './connection';
import type { ApiPath } from './refs';
import { DeadlineExceededError, KubeAnswerError, KubeApiError, KubeRequestError, KubeUnreachableError, type Operation } from './errors';
import { clipped, printable } from '../text';

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface KubeRequest {
  readonly method: Method;
  /** Absolute API path, built by apiPath from checked names only (lib/kube/refs.ts). */
  readonly path: ApiPath;
  readonly op: Operation;
  readonly body?: unknown;
  /** Defaults to application/json; patches must say which patch they are or the API server answers 415. */
  readonly contentType?: string;
  /** Defaults to application/json; a list of metadata only asks for more (lib/kube/secrets.ts). */
  readonly accept?: string;
  /**
   * The answer as bytes, not JSON (a pod's log): of a 2xx answer at most `maxBytes` are read and kept, a longer one is
   * cut there (its rest is never read), and the request resolves to a TextAnswer.
   */
  readonly text?: { readonly maxBytes: number };
}

/** A 2xx answer asked for as text (KubeRequest.text): its bytes, and whether it went on past the cap and was cut. */
export interface TextAnswer {
  readonly bytes: Buffer;
  readonly cut: boolean;
}

/** Bounded retries: 429, 5xx and broken connections are retried with backoff; other 4xx are final. */
export interface RetryPolicy {
  readonly attempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 200, maxDelayMs: 3000 };

/** The only thing an action gets to talk to Kubernetes with: one method, typed by the caller. */
export interface Kube {
  request<T>(request: KubeRequest, deadline: number): Promise<T>;
}

const RETRIED_STATUSES = new Set([429, 500, 502, 503, 504]);
/**
 * Answers after which the request may have been carried out: the API server (or a gateway in front of it) failed
 * while or after handling it. A 429 is not one: the API server's rate limiting answers it before doing anything.
 */
const MAY_HAVE_APPLIED_STATUSES = new Set([500, 502, 503, 504]);

/**
 * The most bytes of an answer read. An object is at most about 1.5 MiB in etcd (and 3 MiB in a request), so a real Pod
 * or NetworkPolicy, even as JSON with its managedFields, stays well below; a broken proxy's endless answer stops
 * here instead of filling the memory (a 200 MB answer made the RSS grow by 600 to 800 MB).
 */
export const MAX_ANSWER_BYTES = 4 * 1024 * 1024;

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** For a text request's 2xx answer: the bytes kept, and whether more came. */
  bytes?: Buffer;
  cut?: boolean;
}

/** `written`: the request had been sent whole when the connection failed, so the server may have acted on it. */
class TransportError extends Error {
  override name = 'TransportError';
  constructor(
    message: string,
    readonly written: boolean,
  ) {
    super(message);
  }
}
/** The answer was longer than MAX_ANSWER_BYTES: not retried, a broken proxy would answer the same again. */
class AnswerTooLarge extends Error {
  override name = 'AnswerTooLarge';
}
class RequestTimedOut extends Error {
  override name = 'RequestTimedOut';
}

/** A thin HTTP client for the API server over Node's own http/https, with keep-alive and a hard deadline. */
export class KubeClient implements Kube {
  private readonly agent: http.Agent;

  constructor(
    private readonly connection: Connection,
    private readonly retry: RetryPolicy = DEFAULT_RETRY,
    private readonly now: () => number = Date.now,
  ) {
    const options = { keepAlive: true, maxSockets: 16 };
    this.agent =
      connection.server.protocol === 'http:'
        ? new http.Agent(options)
        : new https.Agent({
            ...options,
            ...(connection.ca === undefined ? {} : { ca: connection.ca }),
            ...(connection.clientCert === undefined ? {} : { cert: connection.clientCert }),
            ...(connection.clientKey === undefined ? {} : { key: connection.clientKey }),
            rejectUnauthorized: !connection.insecureSkipTlsVerify,
          });
  }

  async request<T>(request: KubeRequest, deadline: number): Promise<T> {
    const budget = deadline - this.now();
    // Whether an earlier attempt may have been carried out: sent whole with its answer lost, or answered 5xx. It tells
    // a 404 or 409 that reports our own lost write from one that reports someone else's (errors.ts).
    let mayHaveBeenApplied = false;
    // Written once, before any attempt: a body that cannot be written is no failure of the connection to retry.
    let body: Buffer | undefined;
    try {
      body = request.body === undefined ? undefined : Buffer.from(JSON.stringify(request.body), 'utf8');
    } catch (error) {
      throw new KubeRequestError(request.op, `its body cannot be written as JSON (${quoted(String(error))}), so it was not sent`);
    }

    for (let attempt = 1; ; attempt++) {
      if (this.now() >= deadline) throw new DeadlineExceededError(request.op, Math.max(budget, 0));
      let response: RawResponse;
      try {
        response = await this.send(request, body, deadline);
      } catch (error) {
        if (error instanceof RequestTimedOut) throw new DeadlineExceededError(request.op, Math.max(budget, 0));
        if (error instanceof AnswerTooLarge) throw new KubeAnswerError(request.op, error.message);
        if (error instanceof TransportError && error.written) mayHaveBeenApplied = true;
        const cause = (error as Error).message;
        if (attempt >= this.retry.attempts) {
          throw new KubeUnreachableError(request.op, this.connection.server.origin, cause, attempt);
        }
        await this.pause(this.backoff(attempt), deadline, () => {
          return new KubeUnreachableError(request.op, this.connection.server.origin, `${cause}; no time left to retry`, attempt);
        });
        continue;
      }
      if (response.status >= 200 && response.status < 300) {
        if (request.text !== undefined) return { bytes: response.bytes ?? Buffer.alloc(0), cut: response.cut === true } as TextAnswer as unknown as T;
        return parseBody(response.text) as T;
      }
      const earlier = mayHaveBeenApplied;
      if (!RETRIED_STATUSES.has(response.status) || attempt >= this.retry.attempts) throw apiError(request.op, response, attempt, undefined, earlier);
      if (MAY_HAVE_APPLIED_STATUSES.has(response.status)) mayHaveBeenApplied = true;
      const retryAfter = retryAfterMs(response.headers['retry-after']);
      const wait = retryAfter ?? this.backoff(attempt);
      await this.pause(wait, deadline, () => {
        const asked = retryAfter === undefined ? '' : ` (Retry-After asked for ${retryAfter / 1000} s)`;
        return apiError(request.op, response, attempt, `no time left to retry before the deadline${asked}`, earlier);
      });
    }
  }

  private backoff(attempt: number): number {
    const exponential = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (attempt - 1));
    return exponential / 2 + Math.random() * (exponential / 2); // jitter: concurrent alerts do not retry in step
  }

  /** Waits before a retry, unless the wait would outlive the deadline: then the last failure is the answer. */
  private async pause(ms: number, deadline: number, failure: () => Error): Promise<void> {
    if (this.now() + ms >= deadline) throw failure();
    await new Promise((resolve) => setTimeout(resolve, ms));
  }

  private async send(request: KubeRequest, body: Buffer | undefined, deadline: number): Promise<RawResponse> {
    const token = await this.connection.bearerToken();
    const headers: http.OutgoingHttpHeaders = { Accept: request.accept ?? 'application/json', 'User-Agent': 'falco-response' };
    if (token !== undefined && token !== '') headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) {
      headers['Content-Type'] = request.contentType ?? 'application/json';
      headers['Content-Length'] = body.length;
    }
    const server = this.connection.server;
    const basePath = server.pathname.replace(/\/+$/, '');
    const transport = server.protocol === 'http:' ? http : https;
    return new Promise<RawResponse>((resolve, reject) => {
      // Set on 'finish', when the whole request was handed to the connection. A failure before it (refused, reset
      // while connecting) means the server cannot have acted; one after it may follow a write that was carried out.
      let written = false;
      const req = transport.request(
        {
          method: request.method,
          protocol: server.protocol,
          hostname: server.hostname.replace(/^\[|\]$/g, ''),
          port: server.port === '' ? undefined : Number(server.port),
          path: basePath + request.path,
          headers,
          agent: this.agent,
        },
        (res) => {
          // An answer means the request reached a server: from here on a broken connection may follow a write done.
          written = true;
          const chunks: Buffer[] = [];
          let received = 0;
          const status = res.statusCode ?? 0;
          // A text answer's cap: what is past it is dropped unread, and the answer resolves with what was kept.
          const textCap = request.text !== undefined && status >= 200 && status < 300 ? request.text.maxBytes : undefined;
          const stop = () => {
            clearTimeout(timer);
            // Stop reading: destroying the socket drops what is still coming instead of buffering it.
            res.destroy();
            req.destroy();
          };
          const tooLarge = (what: string) => {
            reject(new AnswerTooLarge(`the API server's answer is over the limit of ${MAX_ANSWER_BYTES} bytes on answers (${what})`));
            stop();
          };
          const finish = (cut: boolean) => {
            clearTimeout(timer);
            const body = Buffer.concat(chunks);
            resolve(textCap === undefined ? { status, headers: res.headers, text: body.toString('utf8') } : { status, headers: res.headers, text: '', bytes: body, cut });
          };
          const announced = Number(res.headers['content-length']);
          if (textCap === undefined && announced > MAX_ANSWER_BYTES) {
            tooLarge(`its Content-Length is ${announced}`);
            return;
          }
          res.on('data', (chunk: Buffer) => {
            const room = (textCap ?? MAX_ANSWER_BYTES) - received;
            received += chunk.length;
            if (chunk.length <= room) {
              chunks.push(chunk);
            } else if (textCap === undefined) {
              tooLarge('no Content-Length; reading stopped at the limit');
            } else {
              if (room > 0) chunks.push(chunk.subarray(0, room));
              finish(true);
              stop();
            }
          });
          res.on('end', () => finish(false));
          res.on('error', (error) => {
            clearTimeout(timer);
            reject(new TransportError(error.message, written));
          });
          // Node 12 and 14 signal a response cut off mid-body with 'aborted' only, never 'error' nor 'end'.
          res.on('aborted', () => {
            clearTimeout(timer);
            reject(new TransportError('the connection closed in the middle of the response', written));
          });
        },
      );
      req.on('finish', () => {
        written = true;
      });
      const timer = setTimeout(() => {
        req.destroy(new RequestTimedOut('deadline'));
      }, Math.max(deadline - this.now(), 0));
      req.on('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        // writableFinished as well: it is set when the request was flushed even where 'finish' has not fired yet.
        reject(error instanceof RequestTimedOut ? error : new TransportError(error.code ?? error.message, written || req.writableFinished));
      });
      req.end(body);
    });
  }
}

function parseBody(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** The most characters of an error answer's message quoted in ours; the API server's own are a line or two. */
const MAX_QUOTED_ANSWER = 500;

/** Text from an error answer as our messages quote it: cut short and escaped, since a broken proxy may send anything. */
const quoted = (text: string, max: number = MAX_QUOTED_ANSWER) => printable(clipped(text, max));

function apiError(op: Operation, response: RawResponse, attempts: number, stoppedBy: string | undefined, earlierMayHaveApplied: boolean): KubeApiError {
  const parsed = parseBody(response.text);
  // A proxy in front of the API server may answer with any JSON, `null` included.
  const body = (parsed === null ? undefined : parsed) as { reason?: unknown; message?: unknown } | string | undefined;
  const reason = typeof body === 'object' && typeof body.reason === 'string' ? quoted(body.reason, 100) : '';
  const message =
    typeof body === 'object' && typeof body.message === 'string'
      ? quoted(body.message)
      : typeof body === 'string' && body !== ''
        ? quoted(body)
        : http.STATUS_CODES[response.status] ?? 'no message';
  return new KubeApiError(op, response.status, reason, message, attempts, stoppedBy, earlierMayHaveApplied);
}

/** Retry-After in seconds (the API server never sends the date form). */
function retryAfterMs(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value) * 1000;
}

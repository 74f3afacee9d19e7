/**
 * Falcosidekick's Kubeless output as it calls a function in the cluster (falcosidekick outputs/kubeless.go, the
 * in-cluster branch, through outputs/client.go sendRequest), for the bench to drive a function exactly as it is
 * driven in production:
 * - every alert is its own call, queued on a FIFO semaphore of `maxconcurrentrequests` (golang.org/x/sync/semaphore
 *   Weighted, acquired with a background context: no limit on the wait), default 1;
 * - `POST http://<function>.<namespace>.svc.cluster.local:<port>` (here 127.0.0.1), the body the JSON encoder writes
 *   (ending in a newline), headers `Content-Type: application/json`, `User-Agent: Falcosidekick`, a fresh uuid v4 as
 *   `event-id`, `event-type: falco`, `event-namespace: <the function's namespace>`; Go's transport adds
 *   `Accept-Encoding: gzip` and `Content-Length`;
 * - no timeout (an http.Client with no Timeout) and no retry: a refused or failed call is an error and the alert is
 *   gone; any answer is read whole (the body of a 2xx is logged);
 * - Go's default transport: connections kept alive, no limit on how many, at most 2 idle ones kept per host.
 */
import { randomUUID } from 'crypto';
import * as http from 'http';

/** Falcosidekick's default `kubeless.maxconcurrentrequests` (config.go defaultMaxConcurrentHttpRequests). */
export const SIDEKICK_DEFAULT_MAX_CONCURRENT_REQUESTS = 1;
/** Go's http.DefaultTransport MaxIdleConnsPerHost (DefaultMaxIdleConnsPerHost). */
const GO_MAX_IDLE_CONNS_PER_HOST = 2;

/** What became of one alert handed to the output. */
export interface Delivery {
  /** The HTTP status, or 0 when the call failed without an answer (Falcosidekick logs it and drops the alert). */
  readonly status: number;
  readonly body: string;
  readonly error?: string;
  readonly eventId: string;
  /** process.hrtime.bigint() when the alert was handed to the output (Falcosidekick received it from Falco). */
  readonly queuedAt: bigint;
  /** When the semaphore let it go on the wire. */
  readonly sentAt: bigint;
  /** When the answer was read whole (or the call failed). */
  readonly answeredAt: bigint;
}

/** The output of one Falcosidekick for one function: `send(body)` per alert, as many at once as Falco sends. */
export class KubelessOutput {
  private readonly agent = new http.Agent({ keepAlive: true, maxFreeSockets: GO_MAX_IDLE_CONNS_PER_HOST });
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  /** The most calls seen on the wire at once: never more than maxConcurrentRequests. */
  maxSeenInFlight = 0;

  constructor(
    private readonly port: number,
    readonly maxConcurrentRequests: number = SIDEKICK_DEFAULT_MAX_CONCURRENT_REQUESTS,
    private readonly functionNamespace = 'falco-response',
  ) {
    if (!Number.isInteger(maxConcurrentRequests) || maxConcurrentRequests < 1) throw new Error(`maxconcurrentrequests: a whole number from 1, got ${maxConcurrentRequests}`);
  }

  /** One alert (its JSON text, as Falcosidekick encodes it: ending in a newline). Never rejects. */
  async send(body: string): Promise<Delivery> {
    const queuedAt = process.hrtime.bigint();
    await this.acquire();
    this.maxSeenInFlight = Math.max(this.maxSeenInFlight, this.active);
    const sentAt = process.hrtime.bigint();
    const eventId = randomUUID();
    try {
      const answer = await this.post(body, eventId);
      return { ...answer, eventId, queuedAt, sentAt, answeredAt: process.hrtime.bigint() };
    } finally {
      this.release();
    }
  }

  close(): void {
    this.agent.destroy();
  }

  private acquire(): Promise<void> {
    if (this.active < this.maxConcurrentRequests) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next !== undefined) next();
    else this.active--;
  }

  private post(body: string, eventId: string): Promise<{ status: number; body: string; error?: string }> {
    const payload = Buffer.from(body, 'utf8');
    return new Promise((resolve) => {
      const request = http.request(
        {
          method: 'POST',
          host: '127.0.0.1',
          port: this.port,
          path: '/',
          agent: this.agent,
          headers: {
            'Content-Type': 'application/json',
            'User-Agent': 'Falcosidekick',
            'event-id': eventId,
            'event-type': 'falco',
            'event-namespace': this.functionNamespace,
            'Accept-Encoding': 'gzip',
            'Content-Length': payload.length,
          },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          response.on('error', (error) => resolve({ status: 0, body: '', error: error.message }));
        },
      );
      request.on('error', (error) => resolve({ status: 0, body: '', error: error.message }));
      request.end(payload);
    });
  }
}

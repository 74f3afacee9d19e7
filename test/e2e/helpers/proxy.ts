/**
 * Relays in front of the real API server, on loopback. CountingRelay: TCP, counts connections. FaultRelay: plain HTTP
 * to the function, HTTPS to the server, and injects faults by method, path and request count.
 */
import * as http from 'http';
import * as https from 'https';
import * as net from 'net';

/**
 * A loopback TCP relay in front of the API server that counts connections: a function pointed at it that opens
 * none has sent nothing at all, not even a read. TLS passes through untouched (the serving certificate names
 * 127.0.0.1, whatever the port).
 */
export class CountingRelay {
  private connections = 0;
  private readonly sockets = new Set<net.Socket>();
  private readonly server: net.Server;

  private constructor(target: URL) {
    this.server = net.createServer((client) => {
      this.connections++;
      const upstream = net.connect(Number(target.port), target.hostname);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
  }

  /** A relay on a free loopback port to the API server at `target`. */
  static async start(target: URL): Promise<CountingRelay> {
    const relay = new CountingRelay(target);
    await new Promise<void>((resolve) => relay.server.listen(0, '127.0.0.1', resolve));
    return relay;
  }

  get url(): string {
    return `https://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  /** Connections opened through the relay since it started. */
  get connectionCount(): number {
    return this.connections;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** What the relay does with one request instead of (or before) forwarding it. */
export type Fault =
  /**
   * Answers with this status (a JSON body, as the API server's Status; `rawBody` is sent as it is instead), never
   * forwarding; `before` runs first with the request's body (someone else acting on the cluster in between).
   */
  | {
      readonly kind: 'answer';
      readonly status: number;
      readonly headers?: Readonly<Record<string, string>>;
      readonly body?: unknown;
      readonly rawBody?: string;
      readonly before?: (requestBody: Buffer) => Promise<void>;
    }
  /** Destroys the client's connection on receipt: nothing is forwarded, the client sees a reset. */
  | { readonly kind: 'reset' }
  /** Answers nothing for `ms`, then forwards, unless the client gave up in between (then nothing is forwarded). */
  | { readonly kind: 'delay'; readonly ms: number }
  /** Holds the request until `until` settles, then forwards it. */
  | { readonly kind: 'hold'; readonly until: Promise<unknown> }
  /** Forwards, then destroys the client's connection instead of answering: the server acted, the client never hears. */
  | { readonly kind: 'lose-answer' }
  /** Forwards, then runs `hook` with the real answer before passing that answer on. */
  | { readonly kind: 'after'; readonly hook: (answer: RelayedAnswer) => Promise<void> };

export interface RelayedAnswer {
  readonly status: number;
  readonly body: string;
}

/** Requests matching `method` and `path` (the path with its query) are counted; `fault(n)` decides for the n-th. */
export interface FaultRule {
  readonly method: string;
  readonly path: RegExp;
  /** The fault for the n-th matching request (1-based), or undefined to forward it untouched. */
  readonly fault: (n: number) => Fault | undefined;
}

/** One request as the relay saw it. */
export interface RelayedRequest {
  readonly method: string;
  readonly path: string;
  /** Date.now() when the request arrived. */
  readonly at: number;
  /** The fault injected, if any. */
  fault?: Fault['kind'];
  /** The status the real API server answered, when the request was forwarded and answered. */
  upstreamStatus?: number;
  /** Set when the client closed the connection before it got an answer. */
  abandoned?: boolean;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host', 'te', 'trailer']);

/**
 * A plain-HTTP relay on loopback in front of the real API server (HTTPS, verified against the cluster CA). A function
 * given `http://127.0.0.1:<port>` as its server talks to the real API server through it, with its own bearer token,
 * and the relay can answer instead of the server, reset the connection, stall, or act between the server's answer
 * and the function: faults that TLS would hide from a TCP relay.
 */
export class FaultRelay {
  private readonly rules: { readonly rule: FaultRule; matched: number }[] = [];
  private readonly seen: RelayedRequest[] = [];
  /** What went wrong in the relay itself (a hook that threw, a server it could not reach): a test asserts none. */
  readonly errors: string[] = [];
  private readonly sockets = new Set<net.Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly upstreamAgent: https.Agent;
  private readonly server: http.Server;

  private constructor(
    private readonly target: URL,
    ca: Buffer,
  ) {
    this.upstreamAgent = new https.Agent({ keepAlive: true, ca });
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => res.destroy(error instanceof Error ? error : new Error(String(error))));
    });
    // Longer than any test: an idle connection closed by the relay while the function reuses it would be a fault of
    // its own, counted as an attempt that the test did not inject.
    this.server.keepAliveTimeout = 120000;
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  /** A relay on a free loopback port to the API server at `target`, trusting `ca`. */
  static async start(target: URL, ca: Buffer): Promise<FaultRelay> {
    const relay = new FaultRelay(target, ca);
    await new Promise<void>((resolve) => relay.server.listen(0, '127.0.0.1', resolve));
    return relay;
  }

  /** `http://127.0.0.1:<port>`: the server of a kubeconfig that goes through the relay. */
  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  /** Adds a rule; the first rule that matches a request decides its fault. Returns a function that removes it. */
  inject(rule: FaultRule): () => void {
    const entry = { rule, matched: 0 };
    this.rules.push(entry);
    return () => {
      const at = this.rules.indexOf(entry);
      if (at >= 0) this.rules.splice(at, 1);
    };
  }

  /** Every request seen so far, in arrival order. */
  get requests(): readonly RelayedRequest[] {
    return this.seen;
  }

  /** The requests of a method whose path matches. */
  requestsTo(method: string, path: RegExp): RelayedRequest[] {
    return this.seen.filter((r) => r.method === method && path.test(r.path));
  }

  async stop(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    for (const socket of this.sockets) socket.destroy();
    this.upstreamAgent.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private faultFor(method: string, path: string): Fault | undefined {
    const entry = this.rules.find((e) => e.rule.method === method && e.rule.path.test(path));
    if (entry === undefined) return undefined;
    entry.matched += 1;
    return entry.rule.fault(entry.matched);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const seen: RelayedRequest = { method, path, at: Date.now() };
    this.seen.push(seen);
    let clientGone = false;
    res.on('close', () => {
      if (!res.writableFinished) {
        clientGone = true;
        seen.abandoned = true;
      }
    });
    const body = await readAll(req);
    const fault = this.faultFor(method, path);
    if (fault !== undefined) seen.fault = fault.kind;
    try {
      switch (fault?.kind) {
        case 'answer': {
          if (fault.before !== undefined) await fault.before(body);
          const text = fault.rawBody ?? JSON.stringify(fault.body ?? {});
          res.writeHead(fault.status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...fault.headers });
          res.end(text);
          return;
        }
        case 'reset':
          req.socket.destroy();
          return;
        case 'delay':
          await new Promise<void>((resolve) => {
            const timer = setTimeout(() => {
              this.timers.delete(timer);
              resolve();
            }, fault.ms);
            this.timers.add(timer);
            res.on('close', () => {
              clearTimeout(timer);
              this.timers.delete(timer);
              resolve();
            });
          });
          if (clientGone) return;
          break;
        case 'hold':
          await fault.until;
          break;
        default:
          break;
      }
      const answer = await this.forward(req, path, body);
      seen.upstreamStatus = answer.status;
      if (fault?.kind === 'after') await fault.hook({ status: answer.status, body: answer.body.toString('utf8') });
      if (fault?.kind === 'lose-answer') {
        req.socket.destroy();
        return;
      }
      if (clientGone) return;
      res.writeHead(answer.status, { ...answer.headers, 'Content-Length': answer.body.length });
      res.end(answer.body);
    } catch (error) {
      this.errors.push(`${method} ${path}: ${(error as Error).message}`);
      // A relay that cannot reach the server answers as a broken gateway would, and says why.
      if (!res.headersSent && !clientGone) {
        res.writeHead(502, { 'Content-Type': 'text/plain' });
        res.end(`relay: ${(error as Error).message}`);
      }
    }
  }

  private forward(req: http.IncomingMessage, path: string, body: Buffer): Promise<{ status: number; headers: http.OutgoingHttpHeaders; body: Buffer }> {
    const headers: http.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(name) && value !== undefined) headers[name] = value;
    return new Promise((resolve, reject) => {
      const upstream = https.request(
        { method: req.method, hostname: this.target.hostname, port: Number(this.target.port), path, headers, agent: this.upstreamAgent, timeout: 30000 },
        (answer) => {
          void readAll(answer).then((text) => {
            const passed: http.OutgoingHttpHeaders = {};
            for (const [name, value] of Object.entries(answer.headers)) if (!HOP_BY_HOP.has(name) && name !== 'content-length' && value !== undefined) passed[name] = value;
            resolve({ status: answer.statusCode ?? 502, headers: passed, body: text });
          }, reject);
        },
      );
      upstream.on('timeout', () => upstream.destroy(new Error(`${req.method} ${path}: the API server did not answer within 30 s`)));
      upstream.on('error', reject);
      upstream.end(body);
    });
  }
}

function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

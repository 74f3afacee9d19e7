import * as http from 'http';
import type { AddressInfo } from 'net';

/** One request as a stub received it. */
export interface ReceivedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

/** What a stub answers; `delayMs` holds the answer back (a slow action). */
export interface StubAnswer {
  readonly status: number;
  readonly body: unknown;
  readonly delayMs?: number;
}

/** A local HTTP server on 127.0.0.1 standing in for an action: records every request, answers as told. */
export interface HttpStub {
  readonly url: string;
  readonly received: ReceivedRequest[];
  /** TCP connections accepted so far: keep-alive reuse shows as fewer connections than requests. */
  readonly connections: () => number;
  /** Requests being answered right now, and the most there ever were at once. */
  readonly inFlight: () => { now: number; max: number };
  close(): Promise<void>;
}

export async function startStub(answer: (request: ReceivedRequest) => StubAnswer, onRequest?: (request: ReceivedRequest) => void): Promise<HttpStub> {
  const received: ReceivedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let connections = 0;
  let now = 0;
  let max = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const request = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) };
      received.push(request);
      onRequest?.(request);
      now++;
      max = Math.max(max, now);
      const reply = answer(request);
      const send = () => {
        timers.delete(timer);
        now--;
        const text = typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
        res.writeHead(reply.status, { 'Content-Type': typeof reply.body === 'string' ? 'text/plain' : 'application/json' });
        res.end(text);
      };
      const timer = setTimeout(send, reply.delayMs ?? 0);
      timers.add(timer);
    });
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    received,
    connections: () => connections,
    inFlight: () => ({ now, max }),
    close: () =>
      new Promise<void>((resolve) => {
        timers.forEach((t) => clearTimeout(t));
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

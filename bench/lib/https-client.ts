/**
 * The physical floor: the least a client can do to make a call to the API server. A keep-alive HTTPS agent (the
 * same socket limit as lib/kube/client.ts), a bearer token, the body written and read whole; no decoding, no guards,
 * no retries, no deadline bookkeeping. Also sets the cluster up for the bench (namespaces, pods).
 */
import * as https from 'https';

export interface RawAnswer {
  readonly status: number;
  readonly text: string;
}

export class FloorClient {
  private readonly agent: https.Agent;
  private readonly host: string;
  private readonly port: number;

  constructor(
    server: string,
    private readonly token: string,
    ca: Buffer,
  ) {
    const url = new URL(server);
    this.host = url.hostname;
    this.port = Number(url.port);
    this.agent = new https.Agent({ keepAlive: true, maxSockets: 16, ca });
  }

  request(method: string, path: string, body?: string, contentType = 'application/json'): Promise<RawAnswer> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { Accept: 'application/json', Authorization: `Bearer ${this.token}` };
      if (body !== undefined) {
        headers['Content-Type'] = contentType;
        headers['Content-Length'] = Buffer.byteLength(body);
      }
      const req = https.request({ method, host: this.host, port: this.port, path, headers, agent: this.agent, timeout: 10000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within 10 s`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  /** A call that must succeed (setting up): its JSON answer, or an error naming the call and the answer. */
  async ok<T>(method: string, path: string, body?: unknown): Promise<T> {
    const answer = await this.request(method, path, body === undefined ? undefined : JSON.stringify(body));
    if (answer.status < 200 || answer.status >= 300) throw new Error(`${method} ${path} answered ${answer.status}: ${answer.text.slice(0, 300)}`);
    return JSON.parse(answer.text) as T;
  }

  close(): void {
    this.agent.destroy();
  }
}

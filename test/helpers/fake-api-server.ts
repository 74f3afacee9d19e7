/**
 * A small Kubernetes API server stand-in on 127.0.0.1 over plain HTTP, for tests that run a bundle in its own
 * process (where nock cannot reach): it answers from a table and records every call. With writeKubeconfig, a
 * bundle finds it through KUBECONFIG exactly as it finds a real cluster (lib/kube/connection.ts).
 */
import { writeFileSync } from 'fs';
import * as http from 'http';
import type { AddressInfo } from 'net';

export const FAKE_API_TOKEN = 'fake-api-token';

export interface RecordedCall {
  readonly method: string;
  readonly path: string;
  readonly authorization: string | undefined;
  readonly body: string;
}

/** What the fake API answers: a status and a JSON body. */
export interface FakeAnswer {
  readonly status: number;
  readonly body: unknown;
}

export interface FakeApiServer {
  readonly url: string;
  /** The calls received since the last take(), in order; take() forgets them. */
  take(): RecordedCall[];
  close(): Promise<void>;
}

/** `routes` maps `METHOD /path` to an answer; anything else is a 501 Status, which a test then sees in the answer. */
export async function startFakeApiServer(routes: Readonly<Record<string, FakeAnswer>>): Promise<FakeApiServer> {
  let calls: RecordedCall[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const key = `${req.method ?? ''} ${req.url ?? ''}`;
      calls.push({ method: req.method ?? '', path: req.url ?? '', authorization: req.headers.authorization, body: Buffer.concat(chunks).toString('utf8') });
      const answer = routes[key] ?? { status: 501, body: apiStatus(501, 'NotImplemented', `the fake API server has no answer for ${key}`) };
      const text = JSON.stringify(answer.body);
      res.writeHead(answer.status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    take: () => {
      const taken = calls;
      calls = [];
      return taken;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The API server's Status object for an error answer. */
export function apiStatus(code: number, reason: string, message: string) {
  return { kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason, code };
}

/** A kubeconfig in the JSON form the bundles read, pointing at `server` with a bearer token. */
export function writeKubeconfig(file: string, server: string, token: string = FAKE_API_TOKEN): void {
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'fake',
    contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake' } }],
    clusters: [{ name: 'fake', cluster: { server } }],
    users: [{ name: 'fake', user: { token } }],
  };
  writeFileSync(file, JSON.stringify(config, null, 2));
}

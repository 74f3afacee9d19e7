import nock from 'nock';
import type { PodAction } from '../../lib/action';
import { KubeClient, type Kube } from '../../lib/kube/client';
import { METADATA_LIST_ACCEPT } from '../../lib/kube/secrets';
import { memoryLogger } from '../../lib/log';
import type { KubelessHandler } from '../../lib/runner';
import { podActionHandler } from './recorded-handler';
import { alert, kubelessContext, kubelessEvent, TOKEN } from './fixtures';
import { parsedBody, type MemoryCluster, type Reply } from './memory-cluster';

// The API objects live with the other fixtures (tests and bench alike); the unit tests import them from here too.
export { podObject, policyStored, status, TOKEN } from './fixtures';

/** The fake API server every unit test talks to through nock; no real connection is ever made. */
export const API_SERVER = 'https://kube.test:6443';

/** A real KubeClient (retries, deadlines, headers) pointed at the fake server, with short retry delays. */
export function testKube(options: { attempts?: number; baseDelayMs?: number } = {}): KubeClient {
  return new KubeClient(
    {
      server: new URL(API_SERVER),
      insecureSkipTlsVerify: false,
      bearerToken: () => Promise.resolve(TOKEN),
      source: 'a test token',
    },
    { attempts: options.attempts ?? 4, baseDelayMs: options.baseDelayMs ?? 5, maxDelayMs: 50 },
  );
}

/** A nock scope that also insists on the bearer token and JSON accept header. */
export function fakeApi(): nock.Scope {
  // JSON, or the metadata-only list capture-evidence's retention asks for (lib/kube/secrets.ts).
  const accept = (value: string) => value === 'application/json' || value === METADATA_LIST_ACCEPT;
  return nock(API_SERVER, { reqheaders: { authorization: `Bearer ${TOKEN}`, accept } });
}

/**
 * Serves every method and path of the fake API server from `answer`, strict headers kept (fakeApi). Async, so that an
 * error thrown by `answer` becomes a broken connection (nock destroys the request with it), not a hang.
 */
export function serveApi(
  answer: (method: string, path: string, body: unknown, authorization: string | undefined) => Reply | Promise<Reply>,
): nock.Scope {
  const scope = fakeApi().persist();
  for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']) {
    scope
      .intercept(() => true, method)
      .optionally()
      .reply(async function (uri, body) {
        return answer(method, uri, parsedBody(body), this.req.headers.authorization);
      });
  }
  return scope;
}

/** A MemoryCluster behind nock: every call recorded by the cluster (`cluster.take()`), its faults applied. */
export function serveCluster(cluster: MemoryCluster): nock.Scope {
  return serveApi((method, path, body, authorization) => cluster.serve(method, path, body, authorization));
}

/**
 * A pod action's handler as its bundle builds it, talking to the fake API server through a real KubeClient, with
 * the log lines of its calls in `log` and those it wrote at load (the warning that no secret is set) in `atStart`:
 * `const { handler, log } = handlerFor(action, { RULES: '*' })`.
 */
export function handlerFor(
  action: PodAction,
  env: Record<string, string> = {},
  options: { kube?: Kube; ownNamespace?: string } = {},
): { handler: KubelessHandler; log: ReturnType<typeof memoryLogger>; atStart: Record<string, unknown>[] } {
  const log = memoryLogger();
  const handler = podActionHandler(action, { env, kube: options.kube ?? testKube(), log, ownNamespace: options.ownNamespace ?? 'falco-response' });
  return { handler, log, atStart: log.lines.splice(0) };
}

/** One terminal-shell alert through a pod action's handler: its answer, its HTTP status and its log lines. */
export async function runTerminalShell(action: PodAction, env: Record<string, string> = {}) {
  const { handler, log } = handlerFor(action, { RULES: '*', ...env });
  const { event, response } = kubelessEvent(alert('terminal-shell'));
  const answer = await handler(event, kubelessContext());
  return { answer, status: response.statusCode, log: log.lines };
}

/** Every request nock answered, as `METHOD path`, in order. */
export function recorded(scope: nock.Scope): string[] {
  const calls: string[] = [];
  scope.on('request', (req: { method: string; path: string }) => calls.push(`${req.method} ${req.path}`));
  return calls;
}

let eventsStored = 0;

/**
 * The API server's answer to an Event POST: the Event as sent, named from its `generateName` as the API server names
 * it (the first 58 characters and 5 more), with a uid and a resourceVersion:
 * `fakeApi().post(EVENTS).reply(201, (_uri, body) => eventStored(body))`.
 */
export function eventStored(body: nock.Body) {
  const event = (typeof body === 'string' ? JSON.parse(body) : body) as { metadata?: { name?: string; generateName?: string } };
  const n = ++eventsStored;
  const name = event.metadata?.name ?? `${(event.metadata?.generateName ?? '').slice(0, 58)}${n.toString(36).padStart(5, 'x')}`;
  return {
    ...event,
    metadata: { ...event.metadata, name, uid: `uid-event-${n}`, resourceVersion: String(1000 + n), creationTimestamp: '2026-12-01T21:00:00Z' },
  };
}

/**
 * Table-driven action tests: a case is an alert, the Kubernetes calls it must make (each with the reply it gets) or
 * an in-memory cluster it runs against, and the exact answer; `actionCases(action, table)` turns each case into one
 * mocha test, run strictly: every expected call made, in order, with its body and headers, and nothing else.
 */
import { strict as assert } from 'assert';
import nock from 'nock';
import { inspect, isDeepStrictEqual } from 'util';
import type { Action } from '../../lib/action';
import { memoryLogger } from '../../lib/log';
import { ConfigurationError, readParams, type ParamSpecs } from '../../lib/params';
import type { TargetKind } from '../../lib/resolve';
import { eventStored, fakeApi, serveCluster, testKube } from './fake-cluster';
import { alert, kubelessContext, kubelessEvent } from './fixtures';
import type { MemoryCluster } from './memory-cluster';
import { actionHandler } from './recorded-handler';

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** What the fake API server answers one call: `[status, body, headers]`, a broken connection, or an Event as stored. */
export type CallReply = readonly [number, unknown?, (Record<string, string> | undefined)?] | { readonly error: string } | typeof STORED;

/** The reply to an Event POST: 201 with the Event as sent, named and given a uid as the API server does (eventStored). */
export const STORED = 'stored';

export interface ExpectedCall {
  readonly method: Method;
  readonly path: string;
  /** The body it must send: exactly this JSON (nock compares it whole), or a predicate over the parsed body. */
  readonly body?: object | ((body: any) => boolean);
  /** The Content-Type it must send. */
  readonly contentType?: string;
  readonly reply: CallReply;
  /** The reply comes this late (a server that does not answer in time). */
  readonly delayMs?: number;
}

type CallMaker = (path: string, reply: CallReply, more?: Pick<ExpectedCall, 'body' | 'contentType' | 'delayMs'>) => ExpectedCall;
const maker =
  (method: Method): CallMaker =>
  (path, reply, more = {}) => ({ method, path, reply, ...more });
export const GET = maker('GET');
export const POST = maker('POST');
export const PUT = maker('PUT');
export const PATCH = maker('PATCH');
export const DELETE = maker('DELETE');

/** `calls` made `times` times over, in order: ten alerts, four attempts. */
export const repeat = (times: number, calls: readonly ExpectedCall[]): ExpectedCall[] => Array.from({ length: times }, () => calls).flat();

/** A connection reset before any answer. */
export const RESET: CallReply = { error: 'ECONNRESET' };

/** A JSON value compared exactly, but where the expected holds a RegExp the actual text need only match it. */
export type Expected = unknown;

interface CaseBase {
  readonly title: string;
  readonly env?: Record<string, string>;
  /** The alert, as Falcosidekick POSTs it; the terminal-shell fixture unless given. */
  readonly alert?: unknown;
  /** How many times the alert is delivered, each with its own event-id as Falcosidekick sends them; 1 unless given. */
  readonly deliveries?: number;
  /** Instead of `alert` and `deliveries`: the alert of each delivery, in turn, each with its own event-id. */
  readonly alerts?: readonly unknown[];
  /** How far the runner's clock moves on before each delivery after the first, in seconds (SETTLED_SECONDS); 0 unless given. */
  readonly secondsApart?: number;
  /** The answer, exactly; with `deliveries`, `answers` one per delivery instead. */
  readonly answer?: Expected;
  readonly answers?: readonly Expected[];
  /** The HTTP status of each answer; unless given, 500 for failed, 400 for invalid, else 200. */
  readonly status?: number;
  /** Every log line of the calls, exactly, `time` and `durationMs` left out. */
  readonly log?: readonly Expected[];
  /** Every log line written when the function started, exactly, `time` left out. */
  readonly atStart?: readonly Expected[];
  /** FUNC_TIMEOUT; 30 s unless given. */
  readonly timeoutSeconds?: number;
  /** The answer must come within this many ms (only to catch a hang). */
  readonly withinMs?: number;
}

/** A case against the strict fake API server: exactly these calls, in this order. */
export interface NockCase extends CaseBase {
  readonly calls: readonly ExpectedCall[];
}

/** A case against an in-memory cluster: its state set up, and the calls it must receive, as `METHOD path`. */
export interface ClusterCase extends CaseBase {
  readonly cluster: () => MemoryCluster;
  readonly calls: readonly string[];
}

export type ActionCase = NockCase | ClusterCase;

export interface CaseOptions {
  readonly ownNamespace?: string;
}

/** What one case's run gave, for the few assertions a table cannot hold. */
export interface CaseRun {
  readonly answers: Record<string, unknown>[];
  readonly log: Record<string, unknown>[];
}

/** Body predicates that refused a body, with why: reported with the call that then went unmatched or was not made. */
const bodyProblems: string[] = [];

/**
 * A body predicate that records why a body does not match: `expected` holds the parts of the body it checks, each
 * compared whole (`bodyWith({ reason: 'X', involvedObject: {...} })`).
 */
export function bodyWith(expected: Record<string, Expected>): (body: Record<string, unknown>) => boolean {
  return (body) => {
    const picked = Object.fromEntries(Object.keys(expected).map((k) => [k, body[k]]));
    if (isDeepStrictEqual(picked, matched(expected, picked))) return true;
    bodyProblems.push(`${inspect(picked, { depth: 6 })} is not ${inspect(expected, { depth: 6 })}`);
    return false;
  };
}

/** The pod every alert fixture names, its path, and the Events of its namespace. */
export const POD_PATH = '/api/v1/namespaces/default/pods/kubecon';
export const EVENTS_PATH = '/api/v1/namespaces/default/events';
/** The target of an answer about that pod. */
export const TARGET = { namespace: 'default', pod: 'kubecon' } as const;

/**
 * The answer to an alert alike to one whose call settled the target (lib/runner.ts, SETTLED_SECONDS): done from
 * memory, nothing touched or recorded by this call, `settled` naming when and the event-id of the alert that did it.
 */
export function settledAnswer(action: string, by: string, options: { target?: Expected; described?: string; settledSeconds?: number } = {}): Expected {
  const described = options.described ?? "the pod 'kubecon' in the namespace 'default'";
  return {
    status: 'done',
    action,
    target: options.target ?? TARGET,
    dryRun: false,
    message: new RegExp(
      `^${described} was settled \\d+\\.\\d s ago by an alert of the same rule and priority on the same container: answered from that, nothing done again and no Kubernetes call \\(SETTLED_SECONDS ${options.settledSeconds ?? 10}\\)$`,
    ),
    details: { touched: [], changed: false, eventRecorded: false },
    settled: { at: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, by },
  };
}

/** The alert of a fixture on another container of the same pod name: the pod created again runs containers of new ids. */
export const onAnotherContainer = (a: Record<string, any>) => ({ ...a, output_fields: { ...a.output_fields, 'container.id': 'e1f2a3b4c5d6' } });

/**
 * The one log line of a call about a terminal-shell alert on that pod, its outcome's fields given:
 * `alertHandled('info', { outcome: 'done', result: '...', dryRun: false })`.
 */
export const alertHandled = (level: string, fields: Record<string, Expected>, target: Expected = { namespace: 'default', name: 'kubecon' }) => ({
  level,
  message: 'alert handled',
  eventId: '6f1d3c9e-1b7a-4c2d-9e8f-0a1b2c3d4e5f',
  rule: 'Terminal shell in container',
  priority: 'Critical',
  target,
  ...fields,
});

/** The involved object of the audit Event about the pod `kubecon` in `default`. */
export const KUBECON = { apiVersion: 'v1', kind: 'Pod', name: 'kubecon', namespace: 'default', uid: 'uid-kubecon' };

/** The audit Event's body, the parts a case names: its reason, the pod, the component that wrote it, its message. */
export const auditEvent = (reason: string, message?: string, component?: string) =>
  bodyWith({ reason, involvedObject: KUBECON, ...(component === undefined ? {} : { source: { component } }), ...(message === undefined ? {} : { message }) });

/** `expected` with each RegExp the actual text matches replaced by that text, so that deepEqual shows only real differences. */
function matched(expected: Expected, actual: unknown): Expected {
  if (expected instanceof RegExp) return typeof actual === 'string' && expected.test(actual) ? actual : expected;
  if (Array.isArray(expected)) return expected.map((e, i) => matched(e, Array.isArray(actual) ? actual[i] : undefined));
  if (expected !== null && typeof expected === 'object') {
    const a = actual !== null && typeof actual === 'object' ? (actual as Record<string, unknown>) : {};
    return Object.fromEntries(Object.entries(expected).map(([k, v]) => [k, matched(v, a[k])]));
  }
  return expected;
}

function intercept(scope: nock.Scope, call: ExpectedCall): nock.Scope {
  const method = call.method.toLowerCase() as 'get' | 'post' | 'put' | 'patch' | 'delete';
  let interceptor = scope[method](call.path, call.body as nock.RequestBodyMatcher | undefined);
  if (call.contentType !== undefined) interceptor = interceptor.matchHeader('content-type', call.contentType);
  if (call.delayMs !== undefined) interceptor = interceptor.delay(call.delayMs);
  const { reply } = call;
  if (reply === STORED) return interceptor.reply(201, (_uri, body) => eventStored(body));
  if ('error' in reply) return interceptor.replyWithError(Object.assign(new Error(reply.error === 'ECONNRESET' ? 'socket hang up' : reply.error), { code: reply.error }));
  const [code, body, headers] = reply;
  return interceptor.reply(code, body as nock.Body, headers);
}

const defaultStatus = (answer: Record<string, unknown>) => (answer.status === 'failed' ? 500 : answer.status === 'invalid' ? 400 : 200);
const withoutTimes = (line: Record<string, unknown>) => Object.fromEntries(Object.entries(line).filter(([key]) => key !== 'time' && key !== 'durationMs'));

/** Runs one case strictly; returns what it gave. */
export async function runCase<P extends ParamSpecs, K extends TargetKind>(action: Action<P, K>, c: ActionCase, options: CaseOptions = {}): Promise<CaseRun> {
  // Given
  bodyProblems.length = 0;
  const unmatched: string[] = [];
  const onNoMatch = (req: { method?: string; path?: string }) => unmatched.push(`${req.method ?? '?'} ${req.path ?? '?'}`);
  nock.emitter.on('no match', onNoMatch);
  const made: string[] = [];
  let cluster: MemoryCluster | undefined;
  let scope: nock.Scope;
  if ('cluster' in c) {
    cluster = c.cluster();
    scope = serveCluster(cluster);
  } else {
    scope = fakeApi();
    for (const call of c.calls) scope = intercept(scope, call);
    scope.on('request', (req: { method: string; path: string }) => made.push(`${req.method} ${req.path}`));
  }
  const log = memoryLogger();
  // The real clock, moved on by `secondsApart` per delivery: deadlines stay real, the memory of settled targets ages.
  let skewMs = 0;
  const now = () => Date.now() + skewMs;
  const handler = actionHandler(action, { env: c.env ?? {}, kube: testKube(), log, now, ownNamespace: options.ownNamespace ?? 'falco-response' });
  const atStart = log.lines.splice(0);
  const deliveries = c.alerts?.length ?? c.deliveries ?? 1;
  const alertOf = (i: number) => c.alerts?.[i] ?? c.alert ?? alert('terminal-shell');

  // When
  const answers: Record<string, unknown>[] = [];
  const statuses: number[] = [];
  const started = Date.now();
  try {
    for (let i = 0; i < deliveries; i++) {
      if (i > 0) skewMs += (c.secondsApart ?? 0) * 1000;
      const { event, response } = deliveries === 1 ? kubelessEvent(alertOf(i)) : kubelessEvent(alertOf(i), `event-${i}`);
      answers.push(await handler(event, kubelessContext(c.timeoutSeconds)));
      statuses.push(response.statusCode);
    }
  } finally {
    nock.emitter.removeListener('no match', onNoMatch);
    if ('cluster' in c) nock.cleanAll();
    else nock.abortPendingRequests();
  }
  const elapsed = Date.now() - started;

  // Then (the fake server forgotten afterwards, so that a failed case does not fail the hooks of the next)
  try {
    // A body a predicate refused is only a clue: the call it was meant for shows as unmatched, or as not made
    const why = bodyProblems.length === 0 ? '' : ` (bodies refused: ${bodyProblems.join('; ')})`;
    assert.deepEqual(unmatched, [], `a call no case expected${why}`);
    if (cluster === undefined) {
      assert.ok(scope.isDone(), `expected calls not made: ${scope.pendingMocks().join(', ')}${why}`);
      assert.deepEqual(made, (c.calls as readonly ExpectedCall[]).map((call) => `${call.method} ${call.path}`));
    } else {
      assert.deepEqual(
        cluster.take().map((call) => `${call.method} ${call.path}`),
        c.calls,
      );
    }
    const expected = c.answers ?? [c.answer];
    assert.equal(expected.length, deliveries, `${deliveries} deliveries, ${expected.length} expected answers`);
    assert.deepEqual(answers, matched(expected, answers));
    assert.deepEqual(statuses, c.status === undefined ? answers.map(defaultStatus) : answers.map(() => c.status));
    if (c.log !== undefined) assert.deepEqual(log.lines.map(withoutTimes), matched(c.log, log.lines.map(withoutTimes)));
    if (c.atStart !== undefined) assert.deepEqual(atStart.map(withoutTimes), matched(c.atStart, atStart.map(withoutTimes)));
    if (c.withinMs !== undefined) assert.ok(elapsed < c.withinMs, `answered after ${elapsed} ms`);
  } finally {
    nock.cleanAll();
  }
  return { answers, log: log.lines };
}

/** One mocha test per case of the table. */
export function actionCases<P extends ParamSpecs, K extends TargetKind>(action: Action<P, K>, table: readonly ActionCase[], options: CaseOptions = {}): void {
  for (const c of table) {
    it(c.title, async () => {
      await runCase(action, c, options);
    });
  }
}

/** The message a configuration is refused with when the function starts (and the build checks it); fails if it is accepted. */
export function configurationProblem(parameters: ParamSpecs, env: Record<string, string>): string {
  try {
    readParams(parameters, env);
  } catch (error) {
    assert.ok(error instanceof ConfigurationError);
    return error.message;
  }
  assert.fail('the configuration was accepted');
}

import { randomBytes } from 'crypto';
import { isAuditAlert, knownField, type FalcoAlert } from '../alert';
import { describeValue, InvalidInputError } from '../decode';
import { commonOutcomeFields, entry, type Call, type Entry } from '../entry';
import { clipped, type Logger } from '../log';
import { sha256 } from '../hash';
import { namespaceOf, targetOf } from '../target';
import { MAX_SETTLED_SECONDS, prepare, type Forwarder, type Ready, type Routing } from './config';
import type { CallAnswer } from './invoke';
import type { NotifierCounts, NotifierLimits } from './notifier';
import { SETTLES_HEADER } from '../outcome';
import { forwardOutcomeOfError, forwardStatusOf, outcomeOfReports, type ActionReport, type ForwardOutcome } from './outcome';
import { planFor, type AlertFacts, type Plan } from './routes';

export { defineForwarder, type Forwarder } from './config';

export interface ForwarderOptions {
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly log?: Logger;
  readonly now?: () => number;
  /** The notifier's bounds, for tests (lib/router/notifier.ts NOTIFIER_LIMITS otherwise). */
  readonly notifierLimits?: NotifierLimits;
}

/**
 * A handler with a way to close its kept-alive connections (for tests and tools; Kubeless never unloads it), and the
 * notifier's counts since start (undefined when there is no notifier): plain numbers, for the metrics.
 */
export type ForwarderHandler = Entry<Ready> & { close(): void; notifications(): NotifierCounts | undefined };

/** What the log line of a call says, filled as the call goes: kept when it fails half-way. */
interface Seen {
  alert?: FalcoAlert;
  eventId?: string;
  namespace?: string | undefined;
}

/**
 * Turns the forwarder into the Kubeless handler (lib/entry.ts does the caller check, configuration, admission,
 * decoding, deadline and answer): route, invoke every matching action over HTTP, answer one result per action. A bad
 * configuration is answered 500 on every call from an authorized caller: a bad parameter until a restart, a bad
 * routing table until the mounted table is fixed (it is followed, lib/router/followed-file.ts).
 */
export function forwarderHandler(forwarder: Forwarder, options: ForwarderOptions = {}): ForwarderHandler {
  const handler = entry<Ready, ForwardOutcome, Seen>({
    name: forwarder.name,
    ...options,
    prepare: (env, log, now) => prepare(forwarder, env, log, now, options.notifierLimits),
    fields: () => ({}),
    note(seen, alert, incomingId) {
      seen.alert = alert;
      // Cut as a rule is: a refused one may be as long as a header can be.
      if (incomingId !== undefined) seen.eventId = clipped(incomingId);
      seen.eventId = forwardedEventId(incomingId);
      seen.namespace = alertNamespace(alert);
    },
    testEvent: () => ({ status: 'skipped', code: 'test-event', reason: "Falcosidekick's test event: no action is invoked" }),
    serve: (setup, call, seen) => forward(setup, setup.routing.current(), call, seen, options.now ?? Date.now),
    outcomeOfError: (error) => forwardOutcomeOfError(error),
    statusOf: forwardStatusOf,
    body: (outcome) => ({ ...outcome }),
    logMessage: 'alert forwarded',
    logFields: (seen) => ({
      eventId: seen.eventId ?? null,
      rule: seen.alert === undefined ? null : clipped(seen.alert.rule),
      priority: seen.alert?.priority ?? null,
      namespace: seen.namespace ?? null,
    }),
    outcomeFields: (outcome) => ({
      ...commonOutcomeFields(outcome),
      ...(outcome.status === 'done' || outcome.status === 'actions-failed'
        ? {
            routes: outcome.routes,
            results: outcome.results.map((r) => ({ action: r.action, status: r.status, httpStatus: r.httpStatus, durationMs: r.durationMs })),
          }
        : {}),
    }),
    isFailure: (outcome) => outcome.status === 'failed' || outcome.status === 'actions-failed',
  });
  const ready = () => (handler.ready instanceof Error ? undefined : handler.ready);
  return Object.assign(handler, {
    close: () => {
      ready()?.caller.close();
      ready()?.notifier?.close();
    },
    notifications: () => ready()?.notifier?.counts,
  });
}

/**
 * The namespace routing looks at: `k8s.ns.name` (else `k8smeta.ns.name`; `ka.target.namespace` for audit events),
 * validated, exactly as the actions read it.
 */
export const alertNamespace = namespaceOf;

const EVENT_ID = /^[\x21-\x7e]{1,200}$/;

/** The incoming event-id, passed on to every action so their logs join up; one is made when the caller sent none. */
function forwardedEventId(eventId: string | undefined): string {
  if (eventId === undefined || eventId === '') return uuidV4();
  if (!EVENT_ID.test(eventId)) {
    throw new InvalidInputError([`event: event-id: expected printable text without spaces, at most 200 characters (a UUID), got ${describeValue(eventId)}`]);
  }
  return eventId;
}

/** A random UUID v4; crypto.randomUUID is not in Node 12. */
function uuidV4(): string {
  const b = randomBytes(16);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * The bytes to forward: the very body Falcosidekick sent when the runtime kept it (Kubeless's Express keeps the raw
 * body as `request.body`), so values JSON.parse rounds (evt.time) reach the actions intact; else the data again.
 */
function bodyToForward(event: unknown, data: unknown): Buffer {
  const raw = (event as { extensions?: { request?: { body?: unknown } } } | null)?.extensions?.request?.body;
  if (Buffer.isBuffer(raw) && raw.length > 0) return raw;
  return Buffer.from(typeof data === 'string' ? data : `${JSON.stringify(data)}\n`, 'utf8');
}

async function forward(ready: Ready, routing: Routing, call: Call, seen: Seen, now: () => number): Promise<ForwardOutcome> {
  const { event, alert, deadline } = call;
  // note() made it, or refused the call.
  const eventId = seen.eventId!;
  const namespace = seen.namespace;
  const facts: AlertFacts = { rule: alert.rule, priority: alert.priority, tags: alert.tags ?? [], source: alert.source ?? undefined, namespace };
  const plan = planFor(routing.table, facts);
  if (plan.routes.length === 0) {
    return {
      status: 'skipped',
      code: 'no-route',
      reason: `no route takes the rule ${describeValue(alert.rule.slice(0, 200))} (priority ${alert.priority}): ${plan.misses.join('; ') || 'the routing table is empty'}`,
    };
  }
  const envelope = (event as { data: unknown; 'event-namespace'?: unknown }) ?? {};
  const incomingNamespace = typeof envelope['event-namespace'] === 'string' ? envelope['event-namespace'] : undefined;
  const headers: Record<string, string> = {
    'Content-Type': 'application/json',
    'User-Agent': 'Falcosidekick',
    'event-id': eventId,
    'event-type': 'falco',
  };
  if (ready.outboundSecret !== undefined) headers.Authorization = `Bearer ${ready.outboundSecret}`;
  const eventNamespace = ready.namespace ?? incomingNamespace;
  if (eventNamespace !== undefined) headers['event-namespace'] = eventNamespace;
  const body = bodyToForward(event, envelope.data);
  const alike = alikeKey(alert);
  // Asks the actions to say when an answer settles the target, to answer alike alerts from it (settledOr).
  if (alike !== undefined) headers[SETTLES_HEADER] = 'ask';
  const results = await execute(plan, (action) =>
    settledOr(ready, action, plan, alike, eventId, now, () => invoke(ready, routing.urls.get(action)!, action, plan, { headers, body }, deadline, now)),
  );
  const outcome = outcomeOfReports(
    eventId,
    plan.routes.map((r) => r.route.name),
    results,
  );
  // Queued only: it is sent once this answer is on its way.
  ready.notifier?.notify({ alert: { eventId, rule: alert.rule, priority: alert.priority, namespace }, outcome: outcome.status, results });
  return outcome;
}

/** Runs the plan: routes side by side, each in its own mode; returns one report per action, in plan order. */
async function execute(plan: Plan, call: (action: string) => Promise<ActionReport>): Promise<ActionReport[]> {
  const reports = new Map<string, ActionReport>();
  await Promise.all(
    plan.routes.map(async ({ route, actions }) => {
      if (route.mode === 'parallel') {
        await Promise.all(actions.map(async (action) => reports.set(action, await call(action))));
        return;
      }
      let stoppedBy: string | undefined;
      for (const action of actions) {
        if (stoppedBy !== undefined) {
          reports.set(action, notInvoked(action, plan, `${stoppedBy}, before it in the sequential route '${route.name}', did not succeed`));
          continue;
        }
        const report = await call(action);
        reports.set(action, report);
        if (!report.ok) stoppedBy = action;
      }
    }),
  );
  const order = plan.routes.flatMap((r) => r.actions);
  return order.map((action) => reports.get(action)).filter((r): r is ActionReport => r !== undefined);
}

/**
 * What makes alerts alike for an action that settled their target (lib/runner.ts actedKey, which is at least as
 * fine): the pod and container a syscall alert names, its rule and priority, hashed (the attacker writes the rule).
 * Undefined when it names no pod container (an audit alert, a host event, a name the action would refuse): such an
 * alert always goes to the actions.
 */
function alikeKey(alert: FalcoAlert): string | undefined {
  if (isAuditAlert(alert)) return undefined;
  const container = knownField(alert, ['container.id'])?.value;
  if (container === undefined) return undefined;
  let target: ReturnType<typeof targetOf>;
  try {
    target = targetOf(alert);
  } catch {
    return undefined; // refused by the action itself, with its reason
  }
  if (target.kind !== 'pod') return undefined;
  return sha256(JSON.stringify([target.pod.namespace, target.pod.name, container, alert.rule, alert.priority]), 'base64');
}

/**
 * The action's report: from its answer that settled the target for an alike alert (for as long as it said, its
 * `settles`), or else from calling it, remembering the answer when it says it settles the target.
 */
async function settledOr(
  ready: Ready,
  action: string,
  plan: Plan,
  alike: string | undefined,
  eventId: string,
  now: () => number,
  call: () => Promise<ActionReport>,
): Promise<ActionReport> {
  if (alike === undefined) return call();
  const key = `${action}\n${alike}`;
  const known = ready.settled.recall(key);
  const at = now();
  if (known !== undefined && at - known.at < known.answer.seconds * 1000) {
    const ago = ((at - known.at) / 1000).toFixed(1);
    return {
      action,
      routes: plan.routesOf.get(action) ?? [],
      status: 'done',
      ok: true,
      httpStatus: null,
      durationMs: 0,
      message: `not called: ${action} settled the target ${ago} s ago for an alike alert, and said alike alerts are answered so for ${known.answer.seconds} s (its SETTLED_SECONDS)`,
      settled: { at: new Date(known.at).toISOString(), by: known.answer.by },
    };
  }
  const report = await call();
  const seconds = settlesFor(report);
  if (seconds !== undefined) ready.settled.remember(key, { seconds, by: eventId });
  return report;
}

/** How long the action said its answer settles the target (`settles.seconds`, lib/runner.ts): only a done answer, 2xx. */
function settlesFor(report: ActionReport): number | undefined {
  if (!report.ok || report.status !== 'done') return undefined;
  const answer = report.answer as { dryRun?: unknown; settles?: { seconds?: unknown } } | null | undefined;
  if (typeof answer !== 'object' || answer === null || answer.dryRun !== false) return undefined;
  const seconds = answer.settles?.seconds;
  return typeof seconds === 'number' && Number.isInteger(seconds) && seconds > 0 && seconds <= MAX_SETTLED_SECONDS ? seconds : undefined;
}

function notInvoked(action: string, plan: Plan, why: string): ActionReport {
  return { action, routes: plan.routesOf.get(action) ?? [], status: 'not-invoked', ok: false, httpStatus: null, durationMs: 0, message: `not invoked: ${why}` };
}

async function invoke(
  ready: Ready,
  url: URL,
  action: string,
  plan: Plan,
  request: { headers: Record<string, string>; body: Buffer },
  deadline: number,
  now: () => number,
): Promise<ActionReport> {
  const started = now();
  const release = await ready.limiter.acquire(deadline - started);
  if (typeof release !== 'function') return notInvoked(action, plan, "no call slot came free before the forwarder's deadline (MAX_CONCURRENT_CALLS)");
  let answer: CallAnswer;
  try {
    const left = deadline - now();
    if (left <= 0) return notInvoked(action, plan, "the forwarder's deadline ran out first");
    const callTimeout = ready.params.callTimeoutSeconds * 1000;
    answer = await ready.caller.post({
      url,
      headers: request.headers,
      body: request.body,
      timeoutMs: Math.min(callTimeout, left),
      timeoutNote: callTimeout <= left ? 'CALL_TIMEOUT_SECONDS' : "the forwarder's own deadline",
    });
  } finally {
    release();
  }
  return reportOf(action, plan.routesOf.get(action) ?? [], answer, now() - started);
}

/** What an action may say it did (lib/outcome.ts): an overloaded or refusing action is reported so, not as failed. */
const ACTION_STATUSES = ['done', 'skipped', 'invalid', 'failed', 'unauthorized', 'overloaded'];

function reportOf(action: string, routes: readonly string[], answer: CallAnswer, durationMs: number): ActionReport {
  if (answer.kind === 'no-answer') {
    return { action, routes, status: 'failed', ok: false, httpStatus: null, durationMs, message: answer.error };
  }
  const ok = answer.httpStatus >= 200 && answer.httpStatus < 300;
  const body = answer.body as Record<string, unknown> | string | null;
  const said = (key: string): string | undefined => {
    const value = typeof body === 'object' && body !== null ? body[key] : undefined;
    return typeof value === 'string' ? value : undefined;
  };
  const declared = said('status');
  const status = declared !== undefined && ACTION_STATUSES.includes(declared) ? declared : ok ? 'done' : 'failed';
  const text = typeof body === 'string' && body !== '' ? body : undefined;
  const message = said('message') ?? said('reason') ?? said('error') ?? text ?? `HTTP ${answer.httpStatus}`;
  return { action, routes, status, ok, httpStatus: answer.httpStatus, durationMs, message, answer: answer.body };
}

import { randomBytes } from 'crypto';
import type { FalcoAlert } from '../alert';
import { SIDEKICK_TEST_RULE } from '../alert';
import { describeValue, InvalidInputError } from '../decode';
import { decodeEvent, responseOf } from '../event';
import { clipped, jsonLogger, type Logger } from '../log';
import { namespaceOf } from '../target';
import { callerCheck, isRefusedCaller } from '../auth';
import { budgetMs, type KubelessHandler } from '../runner';
import { prepare, type Forwarder, type Ready, type Routing } from './config';
import type { CallAnswer } from './invoke';
import { forwardOutcomeOfError, forwardStatusOf, outcomeOfReports, type ActionReport, type ForwardOutcome } from './outcome';
import { planFor, type AlertFacts, type Plan } from './routes';

export { defineForwarder, type Forwarder } from './config';

export interface ForwarderOptions {
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly log?: Logger;
  readonly now?: () => number;
}

/** A handler with a way to close its kept-alive connections (for tests and tools; Kubeless never unloads it). */
export type ForwarderHandler = KubelessHandler & { close(): void };

/**
 * Turns the forwarder into the Kubeless handler: check the caller, admit (MAX_IN_FLIGHT, MAX_QUEUED), decode once,
 * route, invoke every matching action over HTTP, answer one result per action. The inbound secret is read first and
 * apart from the rest. A bad configuration is logged loudly once and answered 500 on every call from an authorized
 * caller: a bad parameter until a restart, a bad routing table until the mounted table is fixed (it is followed,
 * lib/forwarder/followed-file.ts).
 */
export function forwarderHandler(forwarder: Forwarder, options: ForwarderOptions = {}): ForwarderHandler {
  const env = options.env ?? process.env;
  const log = options.log ?? jsonLogger({ function: forwarder.name });
  const now = options.now ?? Date.now;
  const checkCaller = callerCheck(env, log, now);
  let ready: Ready | Error;
  try {
    ready = prepare(forwarder, env, log, now);
  } catch (error) {
    ready = error as Error;
    log.error('the function cannot start: every call will fail until the configuration is fixed', { error: ready.message });
  }

  const handler = async (event: unknown, context: unknown) => {
    const started = now();
    const deadline = started + budgetMs(context);
    const seen: { alert?: FalcoAlert; eventId?: string; namespace?: string | undefined } = {};
    let outcome: ForwardOutcome;
    let counted = false;
    try {
      checkCaller(event);
      if (ready instanceof Error) throw ready;
      const setup = ready;
      const leave = await setup.admission.enter(deadline);
      try {
        outcome = await forward(setup, setup.routing.current(), event, deadline, seen, now);
      } finally {
        leave();
      }
    } catch (error) {
      outcome = forwardOutcomeOfError(error);
      counted = isRefusedCaller(error);
    }
    responseOf(event)?.status(forwardStatusOf(outcome));
    // A refusal is counted and logged by the admission or the caller check, at most once a second: a flood cannot
    // flood the log.
    if (outcome.status === 'overloaded' || counted) return { ...outcome };
    log[outcome.status === 'failed' || outcome.status === 'actions-failed' ? 'error' : 'info']('alert forwarded', {
      eventId: seen.eventId ?? null,
      rule: seen.alert === undefined ? null : clipped(seen.alert.rule),
      priority: seen.alert?.priority ?? null,
      namespace: seen.namespace ?? null,
      outcome: outcome.status,
      ...(outcome.status === 'skipped' ? { code: outcome.code, reason: outcome.reason } : {}),
      ...(outcome.status === 'invalid' || outcome.status === 'failed' || outcome.status === 'actions-failed' || outcome.status === 'unauthorized'
        ? { error: outcome.error }
        : {}),
      ...(outcome.status === 'done' || outcome.status === 'actions-failed'
        ? {
            routes: outcome.routes,
            results: outcome.results.map((r) => ({ action: r.action, status: r.status, httpStatus: r.httpStatus, durationMs: r.durationMs })),
          }
        : {}),
      durationMs: now() - started,
    });
    return { ...outcome };
  };
  return Object.assign(handler, { close: () => (ready instanceof Error ? undefined : ready.caller.close()) });
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

async function forward(
  ready: Ready,
  routing: Routing,
  event: unknown,
  deadline: number,
  seen: { alert?: FalcoAlert; eventId?: string; namespace?: string | undefined },
  now: () => number,
): Promise<ForwardOutcome> {
  const { alert, eventId: incomingId } = decodeEvent(event);
  seen.alert = alert;
  // Cut as a rule is: a refused one may be as long as a header can be.
  if (incomingId !== undefined) seen.eventId = clipped(incomingId);
  const eventId = forwardedEventId(incomingId);
  seen.eventId = eventId;
  const namespace = alertNamespace(alert);
  seen.namespace = namespace;
  if (alert.rule === SIDEKICK_TEST_RULE) {
    return { status: 'skipped', code: 'test-event', reason: "Falcosidekick's test event: no action is invoked" };
  }
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
  const results = await execute(plan, (action) => invoke(ready, routing.urls.get(action)!, action, plan, { headers, body }, deadline, now));
  return outcomeOfReports(
    eventId,
    plan.routes.map((r) => r.route.name),
    results,
  );
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

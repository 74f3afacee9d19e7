import type { Action, ActionResult, AuditNote, CheckContext, Touched } from './action';
import { Admission } from './admission';
import { recordAudit } from './audit';
import { callerParams } from './auth';
import { firstRefusal, isProtectedNamespace, SHARED_CHECKS, type CheckFailure, type Skip } from './checks';
import { commonOutcomeFields, entry, type Call, type Env, type KubelessHandler } from './entry';
import type { GuardSettings } from './guards';
import { describeValue } from './decode';
import { sha256 } from './hash';
import { KubeClient, type Kube, type KubeRequest } from './kube/client';
import { loadConnection } from './kube/connection';
import { LaterQueue } from './later';
import { clipped, CountedLine, type Fields, type Logger } from './log';
import { functionMetrics, processRegistry, type FunctionMetrics, type Registry } from './metrics';
import { requestHeader } from './event';
import { answerBody, DryRunWriteRefusedError, httpStatusOf, outcomeOfError, SETTLES_HEADER, type Outcome } from './outcome';
import { ConfigurationError, readParams, type ParamSpecs, type ParamValues } from './params';
import { isNamespaceName } from './names';
import { RepeatMemory, repeatKey } from './repeats';
import { answerTarget, describeTarget, loggedTarget, refOfTarget, sourceOf, sourceSkip, type Target, type TargetKind, type TargetRef } from './resolve';

export type { KubelessHandler } from './entry';

export interface RunnerOptions {
  readonly env?: Env;
  /** Injected in tests; otherwise built from the environment (kubeconfig or in-cluster). */
  readonly kube?: Kube;
  readonly ownNamespace?: string;
  readonly log?: Logger;
  readonly now?: () => number;
  /** Where the metrics are counted; by default the process's registry, which `/metrics` serves (lib/metrics.ts). */
  readonly metrics?: Registry;
  /** The audit Events' queue: its bounds (lib/later.ts), for tests. */
  readonly auditQueue?: { readonly maxEntries?: number; readonly atOnce?: number };
}

/** What `details.eventRecorded` says: the Event is queued, or was dropped (the queue was full), or none was due (false). */
export type EventRecorded = 'queued' | 'dropped' | false;

/** What the configuration gave, read once: the runner's settings apart from the action's own parameters. */
interface Ready<P extends ParamSpecs> {
  readonly guards: GuardSettings;
  readonly params: ParamValues<P>;
  readonly kube: Kube;
  readonly ownNamespace: string | undefined;
  readonly admission: Admission;
  /**
   * The calls by target and the alert's rule, priority, source and container (`actedKey`): in flight, a burst shares
   * one; for SETTLED_SECONDS after one settled its target, alike alerts are answered from it (`settledAnswer`).
   */
  readonly acted: RepeatMemory<Acted>;
  /** The audit Events, recorded after the answers. */
  readonly audits: Audits;
  readonly metrics: FunctionMetrics;
  readonly now: () => number;
}

/** A call that acted on a target, as the memory keeps it: its outcome, and its alert's event-id (cut short). */
interface Acted {
  readonly outcome: Outcome;
  readonly by: string | undefined;
}

/** The audit Events' queue and what it tells: the log (one line a second for drops) and the metrics. */
interface Audits {
  readonly queue: LaterQueue;
  readonly dropped: CountedLine;
}

/**
 * What the log line of a call says beyond its outcome, already cut short: it is kept with a remembered answer for its
 * repeats, and the alert itself (up to the body limit, 1 MB) is not (1000 of them would outgrow the pod).
 */
interface Seen {
  rule?: string;
  priority?: string;
  eventId?: string | undefined;
  target?: TargetRef;
  /** The outcome is that of a call in flight for the same action and target, shared. */
  coalesced?: boolean;
}

/** Refuses every write: dry-run mode cannot change the cluster even if an action forgets to check it. */
function readOnly(kube: Kube): Kube {
  return {
    request<T>(request: KubeRequest, deadline: number): Promise<T> {
      if (request.method !== 'GET') {
        return Promise.reject(new DryRunWriteRefusedError(request.op.verb, request.op.object));
      }
      return kube.request<T>(request, deadline);
    },
  };
}

/**
 * Reads groups of parameters from one environment as one configuration: every problem of every group in one
 * ConfigurationError, in the order the generated manifests list them.
 */
function readGroups<G extends Record<string, ParamSpecs>>(groups: G, env: Env): { [K in keyof G]: ParamValues<G[K]> } {
  const values: Partial<{ [K in keyof G]: ParamValues<G[K]> }> = {};
  const problems: string[] = [];
  for (const key of Object.keys(groups) as (keyof G)[]) {
    try {
      values[key] = readParams(groups[key], env);
    } catch (error) {
      if (!(error instanceof ConfigurationError)) throw error;
      problems.push(...error.problems);
    }
  }
  if (problems.length > 0) throw new ConfigurationError(problems);
  return values as { [K in keyof G]: ParamValues<G[K]> };
}

/**
 * Turns an action into the Kubeless handler (lib/entry.ts does the caller check, configuration, admission, repeats,
 * decoding, deadline and answer): resolve the target the alert names, run the checks in order (the shared ones on the
 * alert, on the target's names, read the target, on the target as read, then the action's own), run the action,
 * record its audit Event, answer what it touched.
 */
export function actionHandler<P extends ParamSpecs, K extends TargetKind>(action: Action<P, K>, options: RunnerOptions = {}): KubelessHandler & { drain(): Promise<void> } {
  const metrics = functionMetrics(action.name, options.metrics ?? processRegistry());
  return entry<Ready<P>, Outcome, Seen>({
    name: action.name,
    ...options,
    ...(action.callers === undefined ? {} : { callers: action.callers }),
    prepare(env, log, now) {
      // The caller check reads ALLOW_UNAUTHENTICATED only when the Secret is absent; read here too, a bad value stops the
      // function at start whether or not the Secret exists, as any other parameter's would.
      const callerParameters = action.callers?.secret === 'required' ? callerParams() : {};
      const { guards, admission, own } = readGroups({ guards: action.guardParameters, admission: action.admissionParameters, caller: callerParameters, own: action.ownParameters }, env);
      const connection = options.kube === undefined ? loadConnection(env) : undefined;
      return {
        guards,
        params: own,
        kube: options.kube ?? new KubeClient(connection!),
        ownNamespace: options.ownNamespace ?? namespaceFromEnv(action.namespaceEnv, env) ?? connection?.ownNamespace,
        admission: new Admission(admission, { log, now }),
        // The calls in flight (no more than the admission lets in), and the answers that settled a target for
        // SETTLED_SECONDS: at most REPEAT_MEMORY_ENTRIES of them, weighed as the repeats' answers are.
        acted: new RepeatMemory<Acted>({ now, maxAgeMs: guards.settledSeconds * 1000, weigh: (acted) => 2 * JSON.stringify(answerBody(acted.outcome)).length }),
        audits: auditsOf(log, now, metrics, options.auditQueue),
        metrics,
        now,
      };
    },
    drain: (setup) => setup.audits.queue.drain(),
    coalesced: (seen) => seen.coalesced === true,
    fields: () => ({}),
    note(seen, alert, eventId) {
      seen.rule = clipped(alert.rule);
      seen.priority = alert.priority;
      seen.eventId = eventId === undefined ? undefined : clipped(eventId);
    },
    testEvent: () => ({ status: 'skipped', code: 'test-event', reason: "Falcosidekick's test event: nothing to do" }),
    serve: (setup, call, seen) => handle(action, setup, call, seen),
    outcomeOfError: (error, seen) => outcomeOfError(error, seen.target),
    statusOf: httpStatusOf,
    body: answerBody,
    logMessage: 'alert handled',
    logFields: (seen) => ({
      eventId: seen.eventId ?? null,
      rule: seen.rule ?? null,
      priority: seen.priority ?? null,
      target: seen.target === undefined ? null : loggedTarget(seen.target),
    }),
    outcomeFields: (outcome) => ({
      ...commonOutcomeFields(outcome),
      ...(outcome.status === 'done' ? { result: outcome.message, dryRun: outcome.dryRun, ...(outcome.settled === undefined ? {} : { settled: outcome.settled }) } : {}),
    }),
    isFailure: (outcome) => outcome.status === 'failed',
    repeats: {
      // What a remembered answer weighs: the text of its answer and log fields, two bytes a character at most in the heap.
      memory: new RepeatMemory({ now: options.now ?? Date.now, weigh: (handled) => 2 * JSON.stringify([answerBody(handled.outcome), handled.fields]).length }),
      key: repeatKey,
      // Answers given again to a repeated call: those that say what happened (done, skipped), never a failure.
      keep: (outcome) => outcome.status === 'done' || outcome.status === 'skipped',
    },
  });
}

/**
 * The pod's namespace from the variable the generator fills (FunctionDescriptor.namespaceEnv), for a function that
 * needs it even with a kubeconfig (which names none); a value that is no namespace name stops the function.
 */
function namespaceFromEnv(variable: string | undefined, env: Env): string | undefined {
  const value = variable === undefined ? undefined : env[variable]?.trim();
  if (value === undefined || value === '') return undefined;
  if (!isNamespaceName(value)) throw new ConfigurationError([`${variable}: expected a namespace name, got ${describeValue(value)}`]);
  return value;
}

/** The handler of a pod action: `actionHandler`, under the name every function's index.ts has used. */
export const podActionHandler = actionHandler;

/** A check's no as the answer: `skipped` with its code, or `failed` with its code for a CheckFailure. */
const refused = (refusal: Skip | CheckFailure, target?: TargetRef): Outcome => {
  const withTarget = target === undefined ? {} : { target };
  return 'failure' in refusal
    ? { status: 'failed', code: refusal.failure, error: refusal.error, ...withTarget }
    : { status: 'skipped', code: refusal.code, reason: refusal.reason, ...withTarget };
};

async function handle<P extends ParamSpecs, K extends TargetKind>(action: Action<P, K>, setup: Ready<P>, call: Call, seen: Seen): Promise<Outcome> {
  const { alert } = call;
  const { guards } = setup;
  const early = firstRefusal(SHARED_CHECKS.alert, { alert, guards });
  if (early !== undefined) return refused(early);
  const wrongSource = sourceSkip(action.sources, alert);
  if (wrongSource !== undefined) return refused(wrongSource);
  const ref = action.target.refOf(alert, action.resourcesFor(setup.params));
  if ('code' in ref) return refused(ref);
  seen.target = ref;
  const context = checkContext(setup);
  const protectedRef =
    firstRefusal(SHARED_CHECKS.ref, { ref, guards, ownNamespace: setup.ownNamespace }) ?? firstRefusal(action.refChecks, { alert, ref, params: setup.params, ...context });
  if (protectedRef !== undefined) return refused(protectedRef, ref);

  // Past the checks on the alert alone, what is left depends on the target and on the alert's rule, priority and
  // source (an action's own checks and labels read them): alerts alike on one target while it is acted on share the
  // one call, a burst costing one read and one write. After the call settled the target (done, not a dry run), alike
  // alerts on the same container are answered from it for SETTLED_SECONDS, with no Kubernetes call: a burst on one
  // pod costs one read per SETTLED_SECONDS, not per alert. A failure or a skip is not kept: the next alert is handled
  // anew.
  const identity = action.target.identityOf(alert);
  const { settledSeconds } = setup.guards;
  const kept = (acted: Acted) => identity !== undefined && settledSeconds > 0 && settles(acted.outcome);
  const { answer, repeated, answeredAt } = await setup.acted.once(
    actedKey(ref, alert, identity),
    async () => ({ outcome: await actOn(action, setup, call, ref, seen), by: seen.eventId }),
    kept,
  );
  if (!repeated && kept(answer) && answer.outcome.status === 'done' && requestHeader(call.event, SETTLES_HEADER) === 'ask') {
    // Said to a caller that asks, so that it may answer alike alerts from it for as long (lib/router/runner.ts).
    return { ...answer.outcome, settles: { seconds: settledSeconds } };
  }
  const outcome = answeredAt === undefined ? answer.outcome : settledAnswer(action.name, answer, answeredAt, settledSeconds, setup.now());
  if (repeated) {
    if (answeredAt === undefined) seen.coalesced = true;
    else setup.metrics.settled();
    if ('target' in outcome && outcome.target !== undefined) seen.target = outcome.target;
  }
  return outcome;
}

/** What an action's checks may ask the runner (lib/action.ts CheckContext). */
function checkContext(setup: Ready<ParamSpecs>): CheckContext {
  return { isProtectedNamespace: (namespace) => isProtectedNamespace(namespace, setup.guards, setup.ownNamespace), now: setup.now() };
}

/**
 * What makes two alerts share one call: the target they name, their rule, priority and source and the target's
 * identity as the alert gives it (a pod's container), hashed (an attacker writes the rule, up to the body limit).
 */
function actedKey(ref: TargetRef, alert: Call['alert'], identity: string | undefined): string {
  return sha256(JSON.stringify([ref.kind, answerTarget(ref), alert.rule, alert.priority, sourceOf(alert), identity ?? null]), 'base64');
}

/** An outcome that leaves its target as the action wants it: done (changed, or found so), for real (not a dry run). */
const settles = (outcome: Outcome): boolean => outcome.status === 'done' && !outcome.dryRun;

/**
 * The answer to an alert alike to one whose call settled the target `at` (epoch ms): done, nothing touched or
 * recorded by this call, `settled` saying when and by which alert. Only a done outcome is kept (`settles`).
 */
function settledAnswer(action: string, acted: Acted, at: number, settledSeconds: number, now: number): Outcome {
  const { outcome } = acted;
  if (outcome.status !== 'done') return outcome;
  const ago = Math.max(0, (now - at) / 1000).toFixed(1);
  return {
    status: 'done',
    action,
    target: outcome.target,
    dryRun: false,
    message:
      `${describeTarget(outcome.target)} was settled ${ago} s ago by an alert of the same rule and priority on the same container: ` +
      `answered from that, nothing done again and no Kubernetes call (SETTLED_SECONDS ${settledSeconds})`,
    details: { touched: [], changed: false, eventRecorded: false },
    settled: { at: new Date(at).toISOString(), by: acted.by ?? null },
  };
}

/** Reads the target, runs the checks on it and the action, queues its Event: never rejects (its error is the outcome). */
async function actOn<P extends ParamSpecs, K extends TargetKind>(
  action: Action<P, K>,
  setup: Ready<P>,
  call: Call,
  ref: Parameters<Action<P, K>['target']['read']>[1],
  seen: Seen,
): Promise<Outcome> {
  try {
    return await act(action, setup, call, ref, seen);
  } catch (error) {
    return outcomeOfError(error, seen.target);
  }
}

async function act<P extends ParamSpecs, K extends TargetKind>(
  action: Action<P, K>,
  setup: Ready<P>,
  { alert, eventId, deadline, log }: Call,
  ref: Parameters<Action<P, K>['target']['read']>[1],
  seen: Seen,
): Promise<Outcome> {
  const { guards } = setup;
  const reading = await action.target.read(setup.kube, ref, deadline);
  if ('skip' in reading) {
    seen.target = reading.ref;
    return refused(reading.skip, reading.ref);
  }
  const { target } = reading;
  const named = refOfTarget(target);
  seen.target = named;
  const refusal = firstRefusal(SHARED_CHECKS.target, { target, guards }) ?? firstRefusal(action.ownChecks, { alert, target, params: setup.params, ...checkContext(setup) });
  if (refusal !== undefined) return refused(refusal, named);

  const dryRun = guards.dryRun;
  const kube = dryRun ? readOnly(setup.kube) : setup.kube;
  const result = await action.run({ alert, eventId, target, params: setup.params, kube, log, ownNamespace: setup.ownNamespace, deadline, dryRun });
  if (result.status === 'skipped' || result.status === 'failed') return { ...result, target: named };
  const changed = result.touched.some((t) => t.changed);
  const eventRecorded = !dryRun && changed && result.audit !== undefined ? queueAudit(setup.audits, action.name, result.audit, { alert, kube: setup.kube, log, eventId, deadline }, target) : false;
  return {
    status: 'done',
    action: action.name,
    target: named,
    dryRun,
    message: result.message,
    details: detailsOf(result, changed, eventRecorded),
  };
}

/** The answer's `details`: the objects touched, whether any changed, what became of the Event, the action's facts. */
function detailsOf(result: Extract<ActionResult, { status: 'done' }>, changed: boolean, eventRecorded: EventRecorded): Record<string, unknown> {
  return { touched: result.touched.map(copyTouched), changed, eventRecorded, ...result.facts };
}

const copyTouched = (t: Touched): Touched => ({ kind: t.kind, ...(t.namespace === undefined ? {} : { namespace: t.namespace }), name: t.name, changed: t.changed });

/** One line a second at most about Events dropped, however many: a storm cannot flood the log. */
const DROPS_LOG_INTERVAL_MS = 1000;

function auditsOf(log: Logger, now: () => number, metrics: FunctionMetrics, bounds: RunnerOptions['auditQueue'] = {}): Audits {
  const queue = new LaterQueue({
    ...bounds,
    settled: (result) => metrics.auditEvent(result === 'done' ? 'recorded' : result),
  });
  const dropped = new CountedLine(
    (count) =>
      log.error('audit Events dropped: the queue of Events to record is full; the changes were made and answered', {
        dropped: count,
        queued: queue.load.queued,
      }),
    DROPS_LOG_INTERVAL_MS,
    now,
  );
  return { queue, dropped };
}

/**
 * What the queued Event needs of the alert (lib/audit.ts alertSummary reads its rule's first 200 characters, its
 * priority and uuid): a waiting Event must not hold an alert of up to the body limit (1 MB). A uuid that long is no
 * UUID and is quoted cut short anyway.
 */
function alertForAudit(alert: Call['alert']): Call['alert'] {
  return {
    rule: alert.rule.slice(0, 200),
    priority: alert.priority,
    time: '',
    output: '',
    output_fields: {},
    ...(alert.uuid == null ? {} : { uuid: alert.uuid.slice(0, 1000) }),
  };
}

/** A logger that adds `fields` to every line: an Event's warning, logged after the answer, names its call. */
function withFields(log: Logger, fields: Fields): Logger {
  return {
    info: (message, more = {}) => log.info(message, { ...fields, ...more }),
    warn: (message, more = {}) => log.warn(message, { ...fields, ...more }),
    error: (message, more = {}) => log.error(message, { ...fields, ...more }),
  };
}

/**
 * Queues the action's Event on the target (lib/audit.ts), recorded after the answer within the call's deadline (as
 * the action's own calls), best effort: its failure is logged (with the call's event-id and target) and counted on
 * `/metrics`, never undoing or failing the change. lib/audit.ts says where: a pod's stream, a node's and its pod's,
 * an audited object's.
 */
function queueAudit(
  audits: Audits,
  action: string,
  note: AuditNote,
  context: { alert: Call['alert']; kube: Kube; log: Logger; eventId: string | undefined; deadline: number },
  target: Target,
): EventRecorded {
  const alert = alertForAudit(context.alert);
  const log = withFields(context.log, { eventId: context.eventId === undefined ? null : clipped(context.eventId), target: loggedTarget(refOfTarget(target)) });
  const queued = audits.queue.add(() =>
    recordAudit({ alert, kube: context.kube, log, deadline: context.deadline }, target, { action, ...note }),
  );
  if (queued) return 'queued';
  audits.dropped.add();
  return 'dropped';
}

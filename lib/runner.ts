import type { PodAction } from './action';
import { Admission, type AdmissionSettings } from './admission';
import { callerCheck, isRefusedCaller } from './auth';
import { decodeEvent, responseOf } from './event';
import { alertGuard, namespaceGuard, podGuard, type GuardSettings } from './guards';
import { KubeClient, type Kube, type KubeRequest } from './kube/client';
import { loadConnection } from './kube/connection';
import { DeadlineExceededError } from './kube/errors';
import { getPod } from './kube/pods';
import { clipped, jsonLogger, type Logger } from './log';
import { answerBody, DryRunWriteRefusedError, httpStatusOf, outcomeOfError, type Outcome } from './outcome';
import { readParams, type ParamSpecs, type ParamValues } from './params';
import { RepeatMemory, repeatKey } from './repeats';
import { targetOf, type PodRef } from './target';

/** The Kubeless handler signature (shared/PROTOCOLS.md section 1). */
export type KubelessHandler = (event: unknown, context: unknown) => Promise<Record<string, unknown>>;

export interface RunnerOptions {
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Injected in tests; otherwise built from the environment (kubeconfig or in-cluster). */
  readonly kube?: Kube;
  readonly ownNamespace?: string;
  readonly log?: Logger;
  readonly now?: () => number;
}

const BACKSTOP_GRACE_MS = 50;

/** The longest delay Node's setTimeout honours (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Kubeless's default FUNC_TIMEOUT, in seconds. */
const DEFAULT_TIMEOUT_SECONDS = 180;

/**
 * The deadline of one call: the runtime never times out a pending promise (PROTOCOLS section 1), so we stop
 * ourselves a little before FUNC_TIMEOUT, leaving time to answer.
 */
export function budgetMs(context: unknown): number {
  const timeout = (context as { timeout?: unknown } | null)?.timeout;
  const seconds = typeof timeout === 'number' && timeout > 0 ? timeout : Number(timeout) > 0 ? Number(timeout) : DEFAULT_TIMEOUT_SECONDS;
  const total = seconds * 1000;
  // A longer delay makes Node's timers fire after 1 ms, which would fail every call at once.
  return Math.min(total - Math.min(1000, total * 0.1), MAX_TIMER_MS - BACKSTOP_GRACE_MS);
}

interface Ready<P extends ParamSpecs> {
  readonly params: ParamValues<P>;
  readonly kube: Kube;
  readonly ownNamespace: string | undefined;
  readonly admission: Admission;
}

/**
 * What the log line of a call says beyond its outcome, already cut short: it is kept with a remembered answer for its
 * repeats, and the alert itself (up to the body limit, 1 MB) is not (1000 of them would outgrow the pod).
 */
interface Seen {
  rule?: string;
  priority?: string;
  eventId?: string | undefined;
  target?: PodRef;
}

/** What a remembered answer weighs: the text of its answer and log fields, two bytes a character at most in the heap. */
const weightOf = (handled: { outcome: Outcome; seen: Seen }) => 2 * JSON.stringify([answerBody(handled.outcome), handled.seen]).length;

/** Answers given again to a repeated call: those that say what happened (done, skipped), never a failure. */
const rememberable = (handled: { outcome: Outcome }) => handled.outcome.status === 'done' || handled.outcome.status === 'skipped';

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
 * Turns a pod action into the Kubeless handler: check the caller, admit (MAX_IN_FLIGHT, MAX_QUEUED), answer a
 * repeated call again, else decode, guards, run, answer. The secret is read first and apart; the rest of the
 * configuration once, when the module loads; a bad one is logged loudly there and makes every call from an
 * authorized caller answer 500 with the same message (an unauthorized one learns nothing from it).
 */
export function podActionHandler<P extends ParamSpecs>(action: PodAction<P>, options: RunnerOptions = {}): KubelessHandler {
  const env = options.env ?? process.env;
  const log = options.log ?? jsonLogger({ function: action.name });
  const now = options.now ?? Date.now;
  const checkCaller = callerCheck(env, log, now);
  let ready: Ready<PodAction<P>['parameters']> | Error;
  try {
    const params = readParams(action.parameters, env);
    const connection = options.kube === undefined ? loadConnection(env) : undefined;
    ready = {
      params,
      kube: options.kube ?? new KubeClient(connection!),
      ownNamespace: options.ownNamespace ?? connection?.ownNamespace,
      admission: new Admission(params as unknown as AdmissionSettings, { log, now }),
    };
  } catch (error) {
    ready = error as Error;
    log.error('the function cannot start: every call will fail until the configuration is fixed', { error: ready.message });
  }

  const repeats = new RepeatMemory<{ outcome: Outcome; seen: Seen }>({ now, weigh: weightOf });

  return async (event, context) => {
    const started = now();
    const budget = budgetMs(context);
    const deadline = started + budget;
    let handled: { outcome: Outcome; seen: Seen };
    let repeated = false;
    let counted = false;
    try {
      checkCaller(event);
      if (ready instanceof Error) throw ready;
      const setup = ready;
      const leave = await setup.admission.enter(deadline);
      try {
        ({ answer: handled, repeated } = await repeats.once(
          repeatKey(event),
          () => attempt(action, setup, event, budget, deadline, log, now),
          rememberable,
        ));
      } finally {
        leave();
      }
    } catch (error) {
      handled = { outcome: outcomeOfError(error), seen: {} };
      counted = isRefusedCaller(error);
    }
    const { outcome, seen } = handled;
    responseOf(event)?.status(httpStatusOf(outcome));
    // A refusal is counted and logged by the admission or the caller check, at most once a second: a flood cannot
    // flood the log.
    if (outcome.status === 'overloaded' || counted) return answerBody(outcome);
    log[outcome.status === 'failed' ? 'error' : 'info']('alert handled', {
      eventId: seen.eventId ?? null,
      rule: seen.rule ?? null,
      priority: seen.priority ?? null,
      target: seen.target ?? null,
      outcome: outcome.status,
      ...(outcome.status === 'skipped' ? { code: outcome.code, reason: outcome.reason } : {}),
      ...(outcome.status === 'invalid' || outcome.status === 'failed' || outcome.status === 'unauthorized' ? { error: outcome.error } : {}),
      ...(outcome.status === 'done' ? { result: outcome.message, dryRun: outcome.dryRun } : {}),
      ...(repeated ? { repeated: true } : {}),
      durationMs: now() - started,
    });
    return repeated ? { ...answerBody(outcome), repeated: true } : answerBody(outcome);
  };
}

/** One run of the action, bounded by the call's deadline; every error becomes the outcome. */
async function attempt<P extends ParamSpecs>(
  action: PodAction<P>,
  setup: Ready<PodAction<P>['parameters']>,
  event: unknown,
  budget: number,
  deadline: number,
  log: Logger,
  now: () => number,
): Promise<{ outcome: Outcome; seen: Seen }> {
  const seen: Seen = {};
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      // A backstop just past the deadline: Kubernetes calls stop themselves at the deadline with a message that
      // names the call, and should win the race; this one catches anything else that hangs.
      timer = setTimeout(() => reject(new DeadlineExceededError(undefined, budget)), Math.max(deadline - now(), 0) + BACKSTOP_GRACE_MS);
    });
    return { outcome: await Promise.race([handle(action, setup, event, deadline, seen, log), timeout]), seen };
  } catch (error) {
    return { outcome: outcomeOfError(error, seen.target), seen };
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

async function handle<P extends ParamSpecs>(
  action: PodAction<P>,
  setup: Ready<PodAction<P>['parameters']>,
  event: unknown,
  deadline: number,
  seen: Seen,
  log: Logger,
): Promise<Outcome> {
  const { alert, eventId } = decodeEvent(event);
  seen.rule = clipped(alert.rule);
  seen.priority = alert.priority;
  seen.eventId = eventId === undefined ? undefined : clipped(eventId);
  const settings = setup.params as unknown as GuardSettings;
  const early = alertGuard(alert, settings);
  if (early !== undefined) return early;
  const target = targetOf(alert);
  if (target.kind === 'none') return { status: 'skipped', code: 'no-pod', reason: target.reason };
  const pod = target.pod;
  seen.target = pod;
  const protectedNamespace = namespaceGuard(pod, settings, setup.ownNamespace);
  if (protectedNamespace !== undefined) return protectedNamespace;

  // undefined: the API server said NotFound; an answer that is not this very pod throws (lib/kube/pods.ts).
  const found = await getPod(setup.kube, pod, deadline);
  if (found === undefined) {
    return { status: 'skipped', code: 'pod-gone', reason: `the pod '${pod.name}' in the namespace '${pod.namespace}' is already gone`, target: pod };
  }
  const optedOut = podGuard(pod, found, settings);
  if (optedOut !== undefined) return optedOut;

  const dryRun = settings.dryRun;
  const result = await action.run({
    alert,
    eventId,
    target: pod,
    pod: found,
    params: setup.params,
    kube: dryRun ? readOnly(setup.kube) : setup.kube,
    log,
    deadline,
    dryRun,
  });
  if (result.status === 'skipped') return { ...result, target: pod };
  return {
    status: 'done',
    action: action.name,
    target: pod,
    dryRun,
    message: result.message,
    ...(result.details === undefined ? {} : { details: result.details }),
  };
}

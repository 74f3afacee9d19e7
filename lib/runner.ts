import type { Action, ActionResult, AuditNote, Touched } from './action';
import { Admission } from './admission';
import { recordAudit } from './audit';
import { firstSkip, SHARED_CHECKS, type Skip } from './checks';
import { commonOutcomeFields, entry, type Call, type Env, type KubelessHandler } from './entry';
import type { GuardSettings } from './guards';
import { KubeClient, type Kube, type KubeRequest } from './kube/client';
import { loadConnection } from './kube/connection';
import { clipped, type Logger } from './log';
import { answerBody, DryRunWriteRefusedError, httpStatusOf, outcomeOfError, type Outcome } from './outcome';
import { ConfigurationError, readParams, type ParamSpecs, type ParamValues } from './params';
import { RepeatMemory, repeatKey } from './repeats';
import { describeTarget, loggedTarget, refOfTarget, sourceSkip, type Target, type TargetKind, type TargetRef } from './resolve';

export type { KubelessHandler } from './entry';

export interface RunnerOptions {
  readonly env?: Env;
  /** Injected in tests; otherwise built from the environment (kubeconfig or in-cluster). */
  readonly kube?: Kube;
  readonly ownNamespace?: string;
  readonly log?: Logger;
  readonly now?: () => number;
}

/** What the configuration gave, read once: the runner's settings apart from the action's own parameters. */
interface Ready<P extends ParamSpecs> {
  readonly guards: GuardSettings;
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
  target?: TargetRef;
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
export function actionHandler<P extends ParamSpecs, K extends TargetKind>(action: Action<P, K>, options: RunnerOptions = {}): KubelessHandler {
  return entry<Ready<P>, Outcome, Seen>({
    name: action.name,
    ...options,
    prepare(env, log, now) {
      const { guards, admission, own } = readGroups({ guards: action.guardParameters, admission: action.admissionParameters, own: action.ownParameters }, env);
      const connection = options.kube === undefined ? loadConnection(env) : undefined;
      return {
        guards,
        params: own,
        kube: options.kube ?? new KubeClient(connection!),
        ownNamespace: options.ownNamespace ?? connection?.ownNamespace,
        admission: new Admission(admission, { log, now }),
      };
    },
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
      ...(outcome.status === 'done' ? { result: outcome.message, dryRun: outcome.dryRun } : {}),
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

/** The handler of a pod action: `actionHandler`, under the name every function's index.ts has used. */
export const podActionHandler = actionHandler;

const skipped = (skip: Skip, target?: TargetRef): Outcome => ({ status: 'skipped', code: skip.code, reason: skip.reason, ...(target === undefined ? {} : { target }) });

async function handle<P extends ParamSpecs, K extends TargetKind>(
  action: Action<P, K>,
  setup: Ready<P>,
  { alert, eventId, deadline, log }: Call,
  seen: Seen,
): Promise<Outcome> {
  const { guards } = setup;
  const early = firstSkip(SHARED_CHECKS.alert, { alert, guards });
  if (early !== undefined) return skipped(early);
  const wrongSource = sourceSkip(action.sources, alert);
  if (wrongSource !== undefined) return skipped(wrongSource);
  const ref = action.target.refOf(alert, action.resourcesFor(setup.params));
  if ('code' in ref) return skipped(ref);
  seen.target = ref;
  const protectedRef = firstSkip(SHARED_CHECKS.ref, { ref, guards, ownNamespace: setup.ownNamespace }) ?? firstSkip(action.refChecks, { alert, ref, params: setup.params });
  if (protectedRef !== undefined) return skipped(protectedRef, ref);

  const reading = await action.target.read(setup.kube, ref, deadline);
  if ('skip' in reading) {
    seen.target = reading.ref;
    return skipped(reading.skip, reading.ref);
  }
  const { target } = reading;
  const named = refOfTarget(target);
  seen.target = named;
  const refused = firstSkip(SHARED_CHECKS.target, { target, guards }) ?? firstSkip(action.ownChecks, { alert, target, params: setup.params });
  if (refused !== undefined) return skipped(refused, named);

  const dryRun = guards.dryRun;
  const kube = dryRun ? readOnly(setup.kube) : setup.kube;
  const result = await action.run({ alert, eventId, target, params: setup.params, kube, log, deadline, dryRun });
  if (result.status === 'skipped') return { ...result, target: named };
  const changed = result.touched.some((t) => t.changed);
  const eventRecorded = !dryRun && changed && result.audit !== undefined ? await audited(action.name, result.audit, { alert, kube, log, deadline }, target) : false;
  return {
    status: 'done',
    action: action.name,
    target: named,
    dryRun,
    message: result.message,
    details: detailsOf(result, changed, eventRecorded),
  };
}

/** The answer's `details`: the objects touched, whether any changed, whether the Event was recorded, the action's facts. */
function detailsOf(result: Extract<ActionResult, { status: 'done' }>, changed: boolean, eventRecorded: boolean): Record<string, unknown> {
  return { touched: result.touched.map(copyTouched), changed, eventRecorded, ...result.facts };
}

const copyTouched = (t: Touched): Touched => ({ kind: t.kind, ...(t.namespace === undefined ? {} : { namespace: t.namespace }), name: t.name, changed: t.changed });

/**
 * Records the action's Event on the target (lib/audit.ts), best effort: `false` when it could not be. Only a pod's
 * event stream takes them so far; on another target the change stands and the answer says no Event was recorded.
 */
async function audited(action: string, note: AuditNote, context: { alert: Call['alert']; kube: Kube; log: Logger; deadline: number }, target: Target): Promise<boolean> {
  if (target.kind !== 'pod') {
    context.log.warn(`${describeTarget(target)} was ${note.change}; audit Events are recorded on pods only, so none was`, {});
    return false;
  }
  return recordAudit(context, { ...target.pod, uid: target.found.metadata?.uid }, { action, ...note });
}

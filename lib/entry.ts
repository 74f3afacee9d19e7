import type { Admission } from './admission';
import { SIDEKICK_TEST_RULE, type FalcoAlert } from './alert';
import { callerCheck, callerRefusal, type CallerPolicy } from './auth';
import { decodeEvent, responseOf } from './event';
import { DeadlineExceededError } from './kube/errors';
import { jsonLogger, type Logger } from './log';
import { functionMetrics, processRegistry, type RefusalReason, type Registry } from './metrics';
import type { RepeatMemory } from './repeats';

/** The Kubeless handler signature (shared/PROTOCOLS.md section 1). */
export type KubelessHandler = (event: unknown, context: unknown) => Promise<Record<string, unknown>>;

export type Env = Readonly<Record<string, string | undefined>>;

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

/** A check as the docs list it (docs/functions.md): its name and what makes it skip. */
export interface DeclaredCheck {
  readonly name: string;
  readonly description: string;
}

/**
 * Falcosidekick's test event (PROTOCOLS section 3) bypasses its minimumpriority: every function answers it as a
 * no-op, code `test-event`. The entry runs this check for every function, right after decoding.
 */
export const TEST_EVENT: DeclaredCheck = {
  name: 'test-event',
  description: "Falcosidekick's test event (rule `Test rule`) is answered `skipped`, code `test-event`, and nothing is done.",
};

/** What every outcome has: its status, and for a skip its code and reason, for a failure its error. */
export interface BaseOutcome {
  readonly status: string;
}

/** One decoded call, as a function's `serve` gets it. */
export interface Call {
  readonly event: unknown;
  readonly alert: FalcoAlert;
  readonly eventId: string | undefined;
  /** Epoch milliseconds: every Kubernetes call and outgoing request stops there. */
  readonly deadline: number;
  readonly log: Logger;
}

/**
 * What a kind of function (the actions' runner, the forwarder) gives the entry: its configuration, what the log line
 * says of an alert, what it does with one, and how its outcomes read. `S` is what the configuration gave, `O` its
 * outcomes, `F` the fields of the log line it fills as the call goes (kept when the call fails half-way).
 */
export interface EntrySpec<S extends { readonly admission: Admission }, O extends BaseOutcome, F> {
  readonly name: string;
  readonly env?: Env;
  readonly log?: Logger;
  readonly now?: () => number;
  /** Where its metrics are counted (lib/metrics.ts); by default the process's, which `/metrics` serves. */
  readonly metrics?: Registry;
  /** Whether it runs without the shared secret (lib/auth.ts CallerPolicy); by default it does, every caller accepted. */
  readonly callers?: CallerPolicy;
  /** Reads and checks the configuration, once, when the module loads; throws on a bad one. */
  prepare(env: Env, log: Logger, now: () => number): S;
  /** The log line's fields before anything is known. */
  fields(): F;
  /** Fills the log line's fields from the decoded alert; may throw InvalidInputError (a field that is refused). */
  note(fields: F, alert: FalcoAlert, eventId: string | undefined): void;
  /** The answer to Falcosidekick's test event (PROTOCOLS section 3): a skip, never an error. */
  testEvent(): O;
  /** Handles one admitted, decoded call other than the test event. */
  serve(setup: S, call: Call, fields: F): Promise<O>;
  /** Any error of a call becomes an outcome; `fields` as far as they got. */
  outcomeOfError(error: unknown, fields: F): O;
  statusOf(outcome: O): number;
  /** The JSON body answered. */
  body(outcome: O): Record<string, unknown>;
  /** The log line's message, e.g. `alert handled`. */
  readonly logMessage: string;
  /** The log line: its fields, then what the outcome adds; failures are logged as errors. */
  logFields(fields: F): Record<string, unknown>;
  outcomeFields(outcome: O): Record<string, unknown>;
  isFailure(outcome: O): boolean;
  /** Whether the outcome was shared with a call in flight for the same work (lib/runner.ts): answered `coalesced: true`. */
  coalesced?(fields: F): boolean;
  /** Resolves once the work calls left running after their answers (the audit Events) has ended. */
  drain?(setup: S): Promise<void>;
  /**
   * A call sent twice gets one answer (lib/repeats.ts): `memory` keeps them by `key(event)`, `keep` says which answers
   * are given again. Without it every call is handled anew.
   */
  readonly repeats?: {
    readonly memory: RepeatMemory<{ outcome: O; fields: F }>;
    key(event: unknown): string | undefined;
    keep(outcome: O): boolean;
  };
}

/**
 * A Kubeless handler, what its configuration gave (an Error when it is bad), for the function's own clean-up, and
 * `drain()`, which resolves once the work left running after the answers (the audit Events) has ended: a runtime
 * shutting down awaits it (runtime/server.ts does).
 */
export type Entry<S> = KubelessHandler & { readonly ready: S | Error; drain(): Promise<void> };

/**
 * The one skeleton of every function: check the caller (INBOUND_SECRET, read first and apart from everything else),
 * then the configuration (read once, when the module loads; a bad one is logged loudly there and makes every call from
 * an authorized caller answer 500 with the same message, an unauthorized one learns nothing from it), admit
 * (MAX_IN_FLIGHT, MAX_QUEUED), answer a repeated call again, decode, answer the test event, serve within the deadline
 * (a backstop catches anything that hangs), map the outcome to its HTTP status, and write one log line. A refusal
 * (401, 503, a broken secret) is counted into a line a second at most instead. Every answer is counted on `/metrics`
 * (lib/metrics.ts): its outcome and code, its answer time; a refusal by its reason; a coalesced one.
 */
export function entry<S extends { readonly admission: Admission }, O extends BaseOutcome, F>(spec: EntrySpec<S, O, F>): Entry<S> {
  const env = spec.env ?? process.env;
  const log = spec.log ?? jsonLogger({ function: spec.name });
  const now = spec.now ?? Date.now;
  const checkCaller = callerCheck(env, log, now, spec.callers);
  const metrics = functionMetrics(spec.name, spec.metrics ?? processRegistry());
  let ready: S | Error;
  try {
    ready = spec.prepare(env, log, now);
  } catch (error) {
    ready = error as Error;
    log.error('the function cannot start: every call will fail until the configuration is fixed', { error: ready.message });
  }
  const repeats = spec.repeats;

  /** One run, bounded by the call's deadline; every error becomes the outcome. */
  async function attempt(setup: S, event: unknown, budget: number, deadline: number): Promise<{ outcome: O; fields: F }> {
    const fields = spec.fields();
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        // A backstop just past the deadline: Kubernetes calls stop themselves at the deadline with a message that
        // names the call, and should win the race; this one catches anything else that hangs.
        timer = setTimeout(() => reject(new DeadlineExceededError(undefined, budget)), Math.max(deadline - now(), 0) + BACKSTOP_GRACE_MS);
      });
      const serve = async (): Promise<O> => {
        const { alert, eventId } = decodeEvent(event);
        spec.note(fields, alert, eventId);
        if (alert.rule === SIDEKICK_TEST_RULE) return spec.testEvent();
        return spec.serve(setup, { event, alert, eventId, deadline, log }, fields);
      };
      return { outcome: await Promise.race([serve(), timeout]), fields };
    } catch (error) {
      return { outcome: spec.outcomeOfError(error, fields), fields };
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }

  const handler = async (event: unknown, context: unknown): Promise<Record<string, unknown>> => {
    const started = now();
    const budget = budgetMs(context);
    const deadline = started + budget;
    let handled: { outcome: O; fields: F };
    let repeated = false;
    let refused: RefusalReason | undefined;
    try {
      checkCaller(event);
      if (ready instanceof Error) throw ready;
      const setup = ready;
      const leave = await setup.admission.enter(deadline);
      try {
        const work = () => attempt(setup, event, budget, deadline);
        if (repeats === undefined) handled = await work();
        else ({ answer: handled, repeated } = await repeats.memory.once(repeats.key(event), work, (h) => repeats.keep(h.outcome)));
      } finally {
        leave();
      }
    } catch (error) {
      const fields = spec.fields();
      handled = { outcome: spec.outcomeOfError(error, fields), fields };
      refused = callerRefusal(error);
    }
    const { outcome, fields } = handled;
    if (outcome.status === 'overloaded') refused = 'overloaded';
    responseOf(event)?.status(spec.statusOf(outcome));
    const body = spec.body(outcome);
    // A refusal is counted and logged by the admission or the caller check, at most once a second: a flood cannot
    // flood the log.
    if (refused !== undefined) {
      metrics.refused(refused);
      return body;
    }
    const coalesced = !repeated && spec.coalesced?.(fields) === true;
    const durationMs = now() - started;
    const code = (outcome as { readonly code?: unknown }).code;
    metrics.answered(outcome.status, typeof code === 'string' ? code : '', durationMs / 1000);
    if (coalesced) metrics.coalesced();
    const marks = { ...(repeated ? { repeated: true } : {}), ...(coalesced ? { coalesced: true } : {}) };
    log[spec.isFailure(outcome) ? 'error' : 'info'](spec.logMessage, {
      ...spec.logFields(fields),
      outcome: outcome.status,
      ...spec.outcomeFields(outcome),
      ...marks,
      durationMs,
    });
    return { ...body, ...marks };
  };
  const drain = () => (ready instanceof Error || spec.drain === undefined ? Promise.resolve() : spec.drain(ready));
  return Object.assign(handler, { ready, drain });
}

/** The fields of the log line every outcome shares: a skip's code and reason, a failure's error. */
export function commonOutcomeFields(outcome: { readonly status: string; readonly code?: string; readonly reason?: string; readonly error?: string }): Record<string, unknown> {
  if (outcome.status === 'skipped') return { code: outcome.code, reason: outcome.reason };
  if (outcome.error === undefined) return {};
  return outcome.code === undefined ? { error: outcome.error } : { code: outcome.code, error: outcome.error };
}

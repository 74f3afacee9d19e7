import { HTTP_STATUS, outcomeOfError } from '../outcome';

/** What one action did with the alert, as it answered; or why it was not asked. */
export interface ActionReport {
  readonly action: string;
  /** Every matching route that names the action (it runs once, whatever their number). */
  readonly routes: readonly string[];
  /** The action's own `status` (done, skipped, invalid, failed); `failed` when it did not answer; `not-invoked`. */
  readonly status: string;
  /** Whether the action answered 2xx. */
  readonly ok: boolean;
  /** The action's HTTP status; null when it did not answer or was not invoked. */
  readonly httpStatus: number | null;
  readonly durationMs: number;
  /** The action's message, reason or error; or what went wrong on the way. */
  readonly message: string;
  /** The action's answer as it sent it (JSON, or text cut short). */
  readonly answer?: unknown;
  /** Not called: answered from the action's answer that settled the target (lib/router/runner.ts), when and for which alert. */
  readonly settled?: { readonly at: string; readonly by: string };
}

/**
 * The forwarder's outcomes, after lib/outcome.ts: bad input (400, nothing invoked), skipped (200 with a code and a
 * reason), done (every invoked action answered 2xx: done or skipped), actions-failed (some action did not succeed:
 * 502, the status of a gateway whose upstream failed, so a 500 still means the forwarder itself is broken), failed
 * (the forwarder's own configuration or a bug: 500).
 */
export type ForwardOutcome =
  | { readonly status: 'invalid'; readonly error: string }
  | { readonly status: 'unauthorized'; readonly error: string }
  | { readonly status: 'skipped'; readonly code: 'test-event' | 'no-route'; readonly reason: string }
  | {
      readonly status: 'done';
      readonly eventId: string;
      readonly message: string;
      readonly routes: readonly string[];
      readonly results: readonly ActionReport[];
    }
  | {
      readonly status: 'actions-failed';
      readonly eventId: string;
      readonly error: string;
      readonly routes: readonly string[];
      readonly results: readonly ActionReport[];
    }
  | { readonly status: 'failed'; readonly error: string }
  | { readonly status: 'overloaded'; readonly error: string };

/** The pod actions' statuses, and 502 for an action that failed: a gateway whose upstream failed. */
const FORWARD_STATUS: Readonly<Record<ForwardOutcome['status'], number>> = { ...HTTP_STATUS, 'actions-failed': 502 };

export function forwardStatusOf(outcome: ForwardOutcome): number {
  return FORWARD_STATUS[outcome.status];
}

/** Errors become outcomes exactly as for pod actions: InvalidInputError is 400, a refusal at the limit 503, anything else 500. */
export function forwardOutcomeOfError(error: unknown): ForwardOutcome {
  const outcome = outcomeOfError(error);
  if (outcome.status === 'invalid') return { status: 'invalid', error: outcome.error };
  if (outcome.status === 'unauthorized') return { status: 'unauthorized', error: outcome.error };
  if (outcome.status === 'overloaded') return { status: 'overloaded', error: outcome.error };
  return { status: 'failed', error: outcome.status === 'failed' ? outcome.error : String(error) };
}

/** The outcome for a set of reports: done when every action answered 2xx. */
export function outcomeOfReports(eventId: string, routes: readonly string[], results: readonly ActionReport[]): ForwardOutcome {
  const failed = results.filter((r) => !r.ok);
  if (failed.length === 0) {
    return {
      status: 'done',
      eventId,
      message: `forwarded to ${results.length} action(s): ${results.map((r) => `${r.action} ${r.status}`).join(', ')}`,
      routes,
      results,
    };
  }
  return {
    status: 'actions-failed',
    eventId,
    error: `${failed.length} of ${results.length} action(s) did not succeed: ${failed.map((r) => `${r.action} ${r.status} (${r.message})`).join('; ')}`,
    routes,
    results,
  };
}

import { OverloadedError } from './admission';
import { SecretRequiredError, SecretUnusableError, UnauthorizedError } from './auth';
import { InvalidInputError } from './decode';
import { ConfigurationError } from './params';
import { DeadlineExceededError, KubeAnswerError, KubeApiError, KubeRequestError, KubeUnreachableError } from './kube/errors';
import { answerTarget, type TargetRef } from './resolve';

export { UnauthorizedError } from './auth';

/**
 * The three outcomes of handling an alert (and "done"). Bad input is never retried (400); a skip is a success that
 * says why nothing was done (200); a failure is the cluster's or the configuration's (500); a call refused because
 * the function is at its limit (lib/admission.ts) may be sent again later (503).
 */
export type Outcome =
  | { readonly status: 'invalid'; readonly error: string }
  | { readonly status: 'unauthorized'; readonly error: string }
  | { readonly status: 'skipped'; readonly code: SkipCode; readonly reason: string; readonly target?: TargetRef }
  | {
      readonly status: 'done';
      readonly action: string;
      readonly target: TargetRef;
      readonly dryRun: boolean;
      readonly message: string;
      readonly details?: Readonly<Record<string, unknown>>;
      /** Answered from the memory of the call that settled the target (lib/runner.ts): when, by which alert's event-id. */
      readonly settled?: { readonly at: string; readonly by: string | null };
      /** This answer settled the target: for `seconds`, alike alerts (the same rule, priority and container) are answered from it. */
      readonly settles?: { readonly seconds: number };
    }
  | { readonly status: 'failed'; readonly error: string; readonly code?: FailureCode; readonly target?: TargetRef }
  | { readonly status: 'overloaded'; readonly error: string };

export type SkipCode =
  | 'test-event'
  | 'no-pod'
  | 'protected-namespace'
  | 'rule-not-selected'
  | 'priority-below-minimum'
  | 'opted-out'
  | 'pod-gone'
  | 'not-applicable'
  | 'source-not-accepted'
  | 'no-node'
  | 'node-gone'
  | 'protected-node'
  | 'no-object'
  | 'object-gone'
  | 'cluster-critical'
  | 'protected-subject'
  | 'event-in-future'
  | 'event-time-unreadable';

/**
 * Why an action refused, as a failure an operator must see (notified and counted as failed), when nothing broke: what
 * was found is what an attacker would arrange.
 */
export type FailureCode = 'shielded-binding' | 'object-changed';

/**
 * Sent `ask` by a caller that answers alike alerts itself while a target is settled (the forwarder): a done answer
 * that settled its target then says for how long, `settles: { seconds }` (lib/runner.ts). Other callers' answers
 * are as they were.
 */
export const SETTLES_HEADER = 'falco-response-settles';

/** The one place where outcomes become HTTP statuses (the forwarder adds only its own `actions-failed`). */
export const HTTP_STATUS: Readonly<Record<Outcome['status'], number>> = {
  invalid: 400,
  unauthorized: 401,
  skipped: 200,
  done: 200,
  failed: 500,
  overloaded: 503,
};

export function httpStatusOf(outcome: Outcome): number {
  return HTTP_STATUS[outcome.status];
}

/**
 * A failure an action explains itself, its message written for the operator (what was not done, and why): answered as
 * `failed` with exactly that message: `new ActionFailedError('the pod … was not labelled: ' + error.message)`.
 */
export class ActionFailedError extends Error {
  override name = 'ActionFailedError';
}

/**
 * A write in dry-run mode: the runner hands a dry-run action a client that refuses every write, so an action that
 * forgets to check `dryRun` fails, naming the write, instead of changing the cluster.
 */
export class DryRunWriteRefusedError extends Error {
  override name = 'DryRunWriteRefusedError';
  constructor(readonly verb: string, readonly object: string) {
    super(`dry run (DRY_RUN is true): refused to ${verb} ${object}; the action tried to change the cluster, and nothing was changed`);
  }
}

/** Any error becomes an outcome; nothing escapes to the runtime, which would answer a bare 500. */
export function outcomeOfError(error: unknown, target?: TargetRef): Outcome {
  if (error instanceof InvalidInputError) return { status: 'invalid', error: error.message };
  if (error instanceof UnauthorizedError) return { status: 'unauthorized', error: error.message };
  if (error instanceof OverloadedError) return { status: 'overloaded', error: error.message };
  const withTarget = target === undefined ? {} : { target };
  if (
    error instanceof ActionFailedError ||
    error instanceof ConfigurationError ||
    error instanceof SecretUnusableError ||
    error instanceof SecretRequiredError ||
    error instanceof DryRunWriteRefusedError ||
    error instanceof KubeApiError ||
    error instanceof KubeAnswerError ||
    error instanceof KubeRequestError ||
    error instanceof KubeUnreachableError ||
    error instanceof DeadlineExceededError
  ) {
    return { status: 'failed', error: error.message, ...withTarget };
  }
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return { status: 'failed', error: `internal error: ${message}`, ...withTarget };
}

/** The JSON body of the answer: the outcome, with the target as `{ namespace, pod }` (lib/resolve.ts answerTarget). */
export function answerBody(outcome: Outcome): Record<string, unknown> {
  if (!('target' in outcome) || outcome.target === undefined) return { ...outcome };
  const { target, ...rest } = outcome;
  return { ...rest, target: answerTarget(target) };
}

/** What a Kubernetes call was for, so that every error can name the verb, the resource and the object. */
export interface Operation {
  /** RBAC verb: get, delete, patch, create, update. */
  readonly verb: string;
  /** RBAC resource, e.g. `pods`, `networkpolicies`, `events`. */
  readonly resource: string;
  /** API group, '' for the core group. */
  readonly group: string;
  /** The object in words: "the pod 'web-1' in the namespace 'prod'". */
  readonly object: string;
}

const describe = (op: Operation) => `${op.verb} ${op.object}`;

/**
 * The API server answered with a status that is not success. After retries the message says how many attempts were
 * made and, when the deadline cut them short, that too: `… answered 503 …: etcd leader changed (after 4 attempt(s))`.
 */
export class KubeApiError extends Error {
  override name = 'KubeApiError';
  constructor(
    readonly op: Operation,
    readonly status: number,
    readonly reason: string,
    readonly apiMessage: string,
    readonly attempts: number = 1,
    readonly stoppedBy?: string,
    /** An earlier attempt of the same request may have been carried out (see KubeClient: `mayHaveBeenApplied`). */
    readonly earlierAttemptMayHaveApplied: boolean = false,
  ) {
    super(
      `${describe(op)} failed: the API server answered ${status}${reason ? ` ${reason}` : ''}: ${apiMessage}${hint(op, status)}` +
        (attempts === 1 && stoppedBy === undefined ? '' : ` (after ${attempts} attempt(s)${stoppedBy === undefined ? '' : `; ${stoppedBy}`})`),
    );
  }
}

function hint(op: Operation, status: number): string {
  if (status === 403) {
    const resource = op.group === '' ? op.resource : `${op.resource}.${op.group}`;
    return (
      ` (the function's ServiceAccount lacks the permission '${op.verb}' on '${resource}': declare it in the action's` +
      ` permissions and apply the regenerated ClusterRole from manifests/)`
    );
  }
  if (status === 401) return ' (the ServiceAccount token was refused: check that it is mounted and not expired)';
  if (status === 415) return ' (the request used a Content-Type this resource does not accept)';
  return '';
}

/** The API server could not be reached, even after retries. */
export class KubeUnreachableError extends Error {
  override name = 'KubeUnreachableError';
  constructor(
    readonly op: Operation,
    readonly server: string,
    readonly cause: string,
    readonly attempts: number,
  ) {
    super(`${describe(op)} failed: could not reach the API server at ${server}: ${cause} (after ${attempts} attempt(s))`);
  }
}

/** The function's own deadline ran out before the call could finish. */
export class DeadlineExceededError extends Error {
  override name = 'DeadlineExceededError';
  constructor(readonly op: Operation | undefined, readonly budgetMs: number) {
    super(
      op === undefined
        ? `the deadline of ${budgetMs} ms ran out before the action finished`
        : `${describe(op)} did not finish before the function's deadline (${budgetMs} ms were left for it)`,
    );
  }
}

/** `isApiStatus(error, 404)`: the API server answered exactly this status. */
export function isApiStatus(error: unknown, status: number): error is KubeApiError {
  return error instanceof KubeApiError && error.status === status;
}

/**
 * The API server answered `status` to a retry of a request an earlier attempt of which may have been carried out: it
 * was sent whole and its answer was lost (a reset, a timeout) or was a 500/502/503/504. So a 404 to a DELETE or a 409
 * to a create most likely reports our own earlier write. A 429, a refused connection or a 4xx before it does not
 * count: the API server did nothing then.
 */
export function isApiStatusAfterPossiblyAppliedAttempt(error: unknown, status: number): error is KubeApiError {
  return isApiStatus(error, status) && error.earlierAttemptMayHaveApplied;
}

/**
 * A 2xx answer that cannot be acted on: over the size cap, or not the object asked for (a broken proxy in front of
 * the API server may answer anything). Reads `get the pod 'x' in the namespace 'y' failed: the API server's answer is
 * not that pod (metadata.uid: required, but missing)`.
 */
/** A call that failed on our side of the wire, not by the API server's status: `<verb> <object> failed: <problem>`. */
abstract class KubeCallProblemError extends Error {
  constructor(
    readonly op: Operation,
    readonly problem: string,
  ) {
    super(`${describe(op)} failed: ${problem}`);
  }
}

export class KubeAnswerError extends KubeCallProblemError {
  override name = 'KubeAnswerError';
}

/**
 * A request that could not be sent at all: its body cannot be written as JSON (an object read from the API server and
 * sent back, with a field nested deeper than JSON.stringify's stack). Not retried, and not "could not reach".
 */
export class KubeRequestError extends KubeCallProblemError {
  override name = 'KubeRequestError';
}

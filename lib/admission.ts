import { CountedLine, type Logger } from './log';
import { integerText, param, type ParamValues } from './params';
import { Semaphore } from './semaphore';

/**
 * How many calls a function handles at once, and how many wait their turn. A flood of alerts (or of calls from any
 * pod that can reach the port) would otherwise pile up promises, bodies and API calls until the pod runs out of
 * memory; past the queue a call is refused at once with 503 and may be sent again later. Sized for the pod's 128 Mi:
 * a held call with a hostile body near the 1 MB limit takes about 4.5 MB (raw bytes and parsed alert), so 8 + 8 of
 * them stay near 70 MB; a real alert takes a few KB.
 */
export function admissionParams() {
  return {
    maxInFlight: param('MAX_IN_FLIGHT', integerText(1, 256), '8', 'alerts handled at once; the next ones wait in a queue'),
    maxQueued: param(
      'MAX_QUEUED',
      integerText(0, 1024),
      '8',
      'alerts waiting for their turn (until their deadline); past it a call is refused at once with 503 and logged',
    ),
  };
}
export type AdmissionParams = ReturnType<typeof admissionParams>;
export type AdmissionSettings = ParamValues<AdmissionParams>;

/** A call refused because the function is at its limit: answered 503 (status `overloaded`), never dropped silently. */
export class OverloadedError extends Error {
  override name = 'OverloadedError';
}

/** At most one line per interval however many calls are refused: the first at once, then the count since the last. */
export const REFUSALS_LOG_INTERVAL_MS = 1000;

export interface AdmissionOptions {
  readonly log: Logger;
  readonly now?: () => number;
  /** For tests: the shortest time between two lines about refused calls. */
  readonly logIntervalMs?: number;
}

/**
 * The bounded number of calls a function handles, with a bounded queue (a Semaphore): `const leave = await
 * admission.enter(deadline)` then `leave()` when done. Throws OverloadedError at once when the queue is full, or when
 * no slot came free before the deadline, and counts each refusal into the log.
 */
export class Admission {
  private readonly slots: Semaphore;
  private readonly now: () => number;
  /** Refusals, logged loudly but at most once per interval. */
  private readonly refusals: CountedLine;

  constructor(
    private readonly limits: AdmissionSettings,
    options: AdmissionOptions,
  ) {
    this.slots = new Semaphore(limits.maxInFlight, limits.maxQueued);
    this.now = options.now ?? Date.now;
    const log = options.log;
    this.refusals = new CountedLine(
      (refused) =>
        log.error('calls refused with 503: the function is at its limit (MAX_IN_FLIGHT, MAX_QUEUED)', {
          refused,
          ...this.slots.load,
          maxInFlight: this.limits.maxInFlight,
          maxQueued: this.limits.maxQueued,
        }),
      options.logIntervalMs ?? REFUSALS_LOG_INTERVAL_MS,
      this.now,
    );
  }

  /** Calls being handled, and calls waiting. */
  get load(): { inFlight: number; queued: number } {
    return this.slots.load;
  }

  async enter(deadline: number): Promise<() => void> {
    const waited = this.now();
    const queued = this.slots.load.queued;
    const slot = await this.slots.acquire(deadline - waited);
    if (slot === 'full') {
      throw this.refused(
        `overloaded: ${this.limits.maxInFlight} alerts are being handled and ${queued} are waiting (MAX_IN_FLIGHT, MAX_QUEUED): this one is refused, send it again later`,
      );
    }
    if (slot === 'timed-out') {
      throw this.refused(
        `overloaded: no slot came free within the call's deadline (waited ${this.now() - waited} ms behind ${this.limits.maxInFlight} alerts in flight, MAX_IN_FLIGHT): send it again later`,
      );
    }
    return slot;
  }

  /** Counts a refusal: its line is written by `refusals`. */
  private refused(message: string): OverloadedError {
    this.refusals.add();
    return new OverloadedError(message);
  }
}

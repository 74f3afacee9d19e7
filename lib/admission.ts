import { CountedLine, type Logger } from './log';
import { integerText, param, type ParamValues } from './params';

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
 * A counting semaphore with a bounded FIFO queue: `const leave = await admission.enter(deadline)` then `leave()`
 * when done. Throws OverloadedError at once when the queue is full, or when no slot came free before the deadline.
 */
export class Admission {
  private active = 0;
  private readonly queue: { grant: () => void; timer: NodeJS.Timeout }[] = [];
  private readonly now: () => number;
  /** Refusals, logged loudly but at most once per interval. */
  private readonly refusals: CountedLine;

  constructor(
    private readonly limits: AdmissionSettings,
    options: AdmissionOptions,
  ) {
    this.now = options.now ?? Date.now;
    const log = options.log;
    this.refusals = new CountedLine(
      (refused) =>
        log.error('calls refused with 503: the function is at its limit (MAX_IN_FLIGHT, MAX_QUEUED)', {
          refused,
          inFlight: this.active,
          queued: this.queue.length,
          maxInFlight: this.limits.maxInFlight,
          maxQueued: this.limits.maxQueued,
        }),
      options.logIntervalMs ?? REFUSALS_LOG_INTERVAL_MS,
      this.now,
    );
  }

  /** Calls being handled, and calls waiting. */
  get load(): { inFlight: number; queued: number } {
    return { inFlight: this.active, queued: this.queue.length };
  }

  enter(deadline: number): Promise<() => void> {
    if (this.active < this.limits.maxInFlight) {
      this.active++;
      return Promise.resolve(this.leaver());
    }
    if (this.queue.length >= this.limits.maxQueued) {
      return Promise.reject(
        this.refused(
          `overloaded: ${this.limits.maxInFlight} alerts are being handled and ${this.queue.length} are waiting (MAX_IN_FLIGHT, MAX_QUEUED): this one is refused, send it again later`,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const waited = this.now();
      const entry = {
        grant: () => {
          clearTimeout(entry.timer);
          resolve(this.leaver());
        },
        timer: setTimeout(() => {
          const at = this.queue.indexOf(entry);
          if (at !== -1) this.queue.splice(at, 1);
          reject(
            this.refused(
              `overloaded: no slot came free within the call's deadline (waited ${this.now() - waited} ms behind ${this.limits.maxInFlight} alerts in flight, MAX_IN_FLIGHT): send it again later`,
            ),
          );
        }, Math.max(deadline - this.now(), 0)),
      };
      this.queue.push(entry);
    });
  }

  private leaver(): () => void {
    let left = false;
    return () => {
      if (left) return;
      left = true;
      const next = this.queue.shift();
      if (next !== undefined) next.grant(); // the slot passes on: `active` stays the same
      else this.active--;
    };
  }

  /** Counts a refusal: its line is written by `refusals`. */
  private refused(message: string): OverloadedError {
    this.refusals.add();
    return new OverloadedError(message);
  }
}

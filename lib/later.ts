/** At most this many tasks wait; past it a task is dropped, and counted. */
export const LATER_QUEUE_ENTRIES = 1000;
/** At most this many run at once: each is one API call, next to the alerts' own. */
export const LATER_AT_ONCE = 4;

/** What became of a task: done (it resolved true), failed (false or a rejection), dropped (the queue was full). */
export type LaterResult = 'done' | 'failed' | 'dropped';

/**
 * Work done after the answer, off its path (the audit Events, lib/runner.ts): a bounded FIFO run a few at a time,
 * `queue.add(() => recordEvent())` returning false when the queue is full and the task dropped. Every task's end is
 * told to `settled` (for the metrics); nothing is lost silently while the process lives, and `drain()` waits for every
 * task taken, for a runtime shutting down. A task must bound its own time (a deadline on its API call).
 */
export class LaterQueue {
  private readonly waiting: (() => Promise<boolean>)[] = [];
  private running = 0;
  private idle: (() => void)[] = [];
  private readonly maxEntries: number;
  private readonly atOnce: number;
  private readonly settled: (result: LaterResult) => void;

  constructor(options: { maxEntries?: number; atOnce?: number; settled?: (result: LaterResult) => void } = {}) {
    this.maxEntries = options.maxEntries ?? LATER_QUEUE_ENTRIES;
    this.atOnce = options.atOnce ?? LATER_AT_ONCE;
    this.settled = options.settled ?? (() => undefined);
  }

  /** Tasks waiting, and running. */
  get load(): { queued: number; running: number } {
    return { queued: this.waiting.length, running: this.running };
  }

  /** Takes the task, to run as soon as a slot is free; false (and counted as dropped) when the queue is full. */
  add(task: () => Promise<boolean>): boolean {
    if (this.waiting.length >= this.maxEntries) {
      this.settled('dropped');
      return false;
    }
    this.waiting.push(task);
    this.next();
    return true;
  }

  /** Resolves once every task taken so far, and any taken meanwhile, has ended. */
  drain(): Promise<void> {
    if (this.running === 0 && this.waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private next(): void {
    while (this.running < this.atOnce) {
      const task = this.waiting.shift();
      if (task === undefined) break;
      this.running++;
      this.run(task).catch(() => undefined); // run() catches the task's own rejection; this, one of `settled`
    }
    if (this.running === 0 && this.waiting.length === 0) {
      const idle = this.idle;
      this.idle = [];
      idle.forEach((resolve) => resolve());
    }
  }

  private async run(task: () => Promise<boolean>): Promise<void> {
    let result: LaterResult;
    try {
      result = (await task()) ? 'done' : 'failed';
    } catch {
      result = 'failed'; // a task says itself why it failed; this only keeps one that throws from stopping the queue
    }
    this.running--;
    try {
      this.settled(result);
    } finally {
      this.next();
    }
  }
}

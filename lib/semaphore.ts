/**
 * A counting semaphore with a FIFO of waiters, each giving up at its own deadline, and at most `maxWaiting` of them:
 * `const slot = await slots.acquire(waitMs)`, then `slot()` when done, unless it is 'full' (refused at once) or
 * 'timed-out' (no slot came free in time). The forwarder bounds its calls to the actions with it, every function the
 * alerts it handles (lib/admission.ts).
 */
export class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly max: number,
    private readonly maxWaiting: number = Infinity,
  ) {}

  /** Slots taken, and callers waiting for one. */
  get load(): { inFlight: number; queued: number } {
    return { inFlight: this.active, queued: this.waiting.length };
  }

  acquire(waitMs: number): Promise<(() => void) | 'full' | 'timed-out'> {
    if (this.active < this.max) {
      this.active++;
      return Promise.resolve(this.releaser());
    }
    if (this.waiting.length >= this.maxWaiting) return Promise.resolve('full');
    return new Promise((resolve) => {
      const grant = () => {
        clearTimeout(timer);
        resolve(this.releaser());
      };
      const timer = setTimeout(() => {
        const at = this.waiting.indexOf(grant);
        if (at !== -1) this.waiting.splice(at, 1);
        resolve('timed-out');
      }, Math.max(waitMs, 0));
      this.waiting.push(grant);
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next !== undefined) next(); // the slot passes on: `active` stays the same
      else this.active--;
    };
  }
}

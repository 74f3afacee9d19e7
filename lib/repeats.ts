import { sha256 } from './hash';

/**
 * A call sent twice gets one answer. The forwarder (like any HTTP client on a kept-alive socket) sends a call again
 * when its socket is reset, even when the first went out and is being handled: without this memory delete-pod ran
 * twice for one alert and the second run answered "already gone" for the alert that deleted the pod.
 */
export const REPEAT_MEMORY_ENTRIES = 1000;
/** Longer than any retry takes; an event-id names one alert, so a repeat after this long is still the same alert. */
export const REPEAT_MEMORY_MS = 15 * 60 * 1000;
/**
 * What the kept answers may weigh together (as their runner weighs them): a few KB each as a rule, but a dry-run
 * answer carries the patch it would write, and 1000 of label-pod's with a 64 KiB output annotation took 64 MiB.
 */
export const REPEAT_MEMORY_BYTES = 8 * 1024 * 1024;

/**
 * What identifies a call: its event-id and the digest of its body (the same event-id with another body is another
 * call). Undefined without an event-id, or when the body cannot be serialised again: such a call is never a repeat.
 */
export function repeatKey(event: unknown): string | undefined {
  const envelope = event as { 'event-id'?: unknown; data?: unknown; extensions?: { request?: { body?: unknown } } } | null;
  const eventId = envelope?.['event-id'];
  if (typeof eventId !== 'string' || eventId === '') return undefined;
  const raw = envelope?.extensions?.request?.body;
  let body: Buffer | string | undefined;
  if (Buffer.isBuffer(raw) && raw.length > 0) body = raw;
  else if (typeof envelope?.data === 'string') body = envelope.data;
  else {
    try {
      body = JSON.stringify(envelope?.data) ?? '';
    } catch {
      return undefined; // too deeply nested to serialise: decoding refuses it anyway
    }
  }
  // Length-prefixed, so no event-id and body can be cut differently into the same text.
  return sha256([`${Buffer.byteLength(eventId, 'utf8')}:${eventId}\n`, body], 'base64');
}

interface Entry<A> {
  at: number;
  running?: Promise<A>;
  answer?: A;
  bytes?: number;
}

/** What `once` gives: the answer, whether it was another call's, and when that call answered if it was not running. */
export interface Once<A> {
  readonly answer: A;
  readonly repeated: boolean;
  /** Set when the answer is a kept one (not shared with a call in flight): when it was given, by `now`. */
  readonly answeredAt?: number;
}

/**
 * A bounded memory of recent calls and their answers (at most `maxEntries` weighing at most `maxBytes` by `weigh`,
 * none older than `maxAgeMs`):
 * `const { answer, repeated } = await memory.once(key, () => work(), (a) => a.status === 'done')`.
 * A repeat of a call still running waits for it and shares its answer; a repeat of a call that answered gets the
 * same answer (and `answeredAt`), without doing the work again, as long as `keep` accepted it (a failure is not
 * kept: trying again after one is right).
 */
export class RepeatMemory<A> {
  private readonly entries = new Map<string, Entry<A>>();
  private answered = 0;
  private bytes = 0;
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly weigh: (answer: A) => number;
  private readonly maxAgeMs: number;
  private readonly now: () => number;

  constructor(options: { maxEntries?: number; maxBytes?: number; weigh?: (answer: A) => number; maxAgeMs?: number; now?: () => number } = {}) {
    this.maxEntries = options.maxEntries ?? REPEAT_MEMORY_ENTRIES;
    this.maxBytes = options.maxBytes ?? REPEAT_MEMORY_BYTES;
    this.weigh = options.weigh ?? (() => 0);
    this.maxAgeMs = options.maxAgeMs ?? REPEAT_MEMORY_MS;
    this.now = options.now ?? Date.now;
  }

  /** Answers kept right now (for tests). */
  get size(): number {
    return this.answered;
  }

  /** `work` must not reject: its rejection would reach every repeat waiting for it. */
  async once(key: string | undefined, work: () => Promise<A>, keep: (answer: A) => boolean): Promise<Once<A>> {
    if (key === undefined) return { answer: await work(), repeated: false };
    this.expire();
    const known = this.entries.get(key);
    if (known?.running !== undefined) return { answer: await known.running, repeated: true };
    if (known !== undefined) return { answer: known.answer as A, repeated: true, answeredAt: known.at };
    const running = work();
    this.entries.set(key, { at: this.now(), running });
    let answer: A;
    try {
      answer = await running;
    } catch (error) {
      this.entries.delete(key);
      throw error;
    }
    this.entries.delete(key);
    if (keep(answer)) this.keep(key, answer);
    return { answer, repeated: false };
  }

  /** The answer kept for `key` and when it was given, if any: nothing runs, and a call in flight is not waited for. */
  recall(key: string): { readonly answer: A; readonly at: number } | undefined {
    this.expire();
    const known = this.entries.get(key);
    return known === undefined || known.running !== undefined ? undefined : { answer: known.answer as A, at: known.at };
  }

  /** Keeps `answer` for `key`, in place of the one kept before, within the bounds (not while a call of `key` runs). */
  remember(key: string, answer: A): void {
    this.expire();
    const known = this.entries.get(key);
    if (known?.running !== undefined) return;
    if (known !== undefined) this.forget(key, known);
    this.keep(key, answer);
  }

  private keep(key: string, answer: A): void {
    const bytes = this.weigh(answer);
    if (bytes > this.maxBytes) return;
    // Inserted last, so the map's order is the order of the answers: the oldest is always first.
    this.entries.set(key, { at: this.now(), answer, bytes });
    this.answered++;
    this.bytes += bytes;
    this.evict();
  }

  private expire(): void {
    const now = this.now();
    for (const [key, entry] of this.entries) {
      if (entry.running !== undefined) continue; // bounded by the calls in flight
      if (now - entry.at < this.maxAgeMs) return;
      this.forget(key, entry);
    }
  }

  private evict(): void {
    for (const [key, entry] of this.entries) {
      if (this.answered <= this.maxEntries && this.bytes <= this.maxBytes) return;
      if (entry.running !== undefined) continue;
      this.forget(key, entry);
    }
  }

  private forget(key: string, entry: Entry<A>): void {
    this.entries.delete(key);
    this.answered--;
    this.bytes -= entry.bytes ?? 0;
  }
}

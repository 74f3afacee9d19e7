import { clipped as clippedTo, printable } from './text';

/** Structured logs: one JSON object per line, so `kubectl logs` output can be filtered with jq. */
export type Fields = Readonly<Record<string, unknown>>;

export interface Logger {
  info(message: string, fields?: Fields): void;
  warn(message: string, fields?: Fields): void;
  error(message: string, fields?: Fields): void;
}

type Level = 'info' | 'warn' | 'error';

export const MAX_LOGGED_TEXT = 200;

/** Alert text in a log field, cut short so one log line stays readable however long the text. */
export function clipped(text: string, max: number = MAX_LOGGED_TEXT): string {
  return clippedTo(text, max);
}

/**
 * `jsonLogger({ function: 'delete-pod' })` writes `{"time":…,"level":"info","function":"delete-pod","message":…}`.
 *
 * Every string of a line reaches the terminal inert, whoever wrote it (the alert's rule, the event-id header, an
 * error quoting either): JSON.stringify escapes C0 controls and lone surrogates, and printable() then escapes what
 * it leaves raw (C1 controls such as U+009B, bidi overrides, U+2028). Outside strings JSON holds only ASCII, and
 * inside them `\u009b` is a JSON escape of the same character: the line stays valid JSON and jq reads the original.
 */
export function jsonLogger(base: Fields, write: (level: Level, line: string) => void = defaultWrite): Logger {
  const log = (level: Level) => (message: string, fields: Fields = {}) => {
    write(level, printable(JSON.stringify({ time: new Date().toISOString(), level, ...base, message, ...fields })));
  };
  return { info: log('info'), warn: log('warn'), error: log('error') };
}

function defaultWrite(level: Level, line: string): void {
  (level === 'info' ? process.stdout : process.stderr).write(`${line}\n`);
}

/**
 * One line for a burst of like events, however many: the first at once, then at most one per interval with the
 * count since the last, written even if none follows. `const refused = new CountedLine((n) => log.warn('…', { refused: n }), 1000)`,
 * then `refused.add()` for each event.
 */
export class CountedLine {
  private unlogged = 0;
  private lastLine = -Infinity;
  private flush: NodeJS.Timeout | undefined;

  constructor(
    private readonly write: (count: number) => void,
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  add(): void {
    this.unlogged++;
    if (this.now() - this.lastLine >= this.intervalMs) this.writeLine();
    else if (this.flush === undefined) this.scheduleFlush(); // the count of the last burst, even if nothing follows
  }

  private scheduleFlush(): void {
    this.flush = setTimeout(
      () => {
        this.flush = undefined;
        // The clock decides, not the timer: by the clock (a test's may stand still) the interval may not have passed.
        if (this.now() - this.lastLine >= this.intervalMs) this.writeLine();
        else this.scheduleFlush();
      },
      Math.max(this.lastLine + this.intervalMs - this.now(), 1),
    );
    this.flush.unref();
  }

  private writeLine(): void {
    if (this.flush !== undefined) clearTimeout(this.flush);
    this.flush = undefined;
    if (this.unlogged === 0) return;
    const count = this.unlogged;
    this.unlogged = 0;
    this.lastLine = this.now();
    this.write(count);
  }
}

/** A logger that keeps lines in memory: for tests. */
export function memoryLogger(): Logger & { readonly lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = jsonLogger({}, (_level, line) => lines.push(JSON.parse(line) as Record<string, unknown>));
  return { ...logger, lines };
}

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
  return text.length > max ? `${text.slice(0, max)}… (${text.length} characters)` : text;
}

/** `jsonLogger({ function: 'delete-pod' })` writes `{"time":…,"level":"info","function":"delete-pod","message":…}`. */
export function jsonLogger(base: Fields, write: (level: Level, line: string) => void = defaultWrite): Logger {
  const log = (level: Level) => (message: string, fields: Fields = {}) => {
    write(level, JSON.stringify({ time: new Date().toISOString(), level, ...base, message, ...fields }));
  };
  return { info: log('info'), warn: log('warn'), error: log('error') };
}

function defaultWrite(level: Level, line: string): void {
  (level === 'info' ? process.stdout : process.stderr).write(`${line}\n`);
}

/** A logger that keeps lines in memory: for tests. */
export function memoryLogger(): Logger & { readonly lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = jsonLogger({}, (_level, line) => lines.push(JSON.parse(line) as Record<string, unknown>));
  return { ...logger, lines };
}

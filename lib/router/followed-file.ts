import { readFileSync } from 'fs';
import type { Logger } from '../log';
import { ConfigurationError } from '../params';

/**
 * How often, at most, the forwarder looks at its mounted routing table again. The kubelet takes up to about a minute
 * to bring a ConfigMap edit into the pod, so a second adds nothing noticeable; and a burst of alerts reads the file
 * once a second, not once per alert.
 */
export const RECHECK_MS = 1000;

/**
 * A configuration file that the function follows while it runs: what `load` made of the file's current text, or the
 * ConfigurationError that says why that text is unusable. The kubelet swaps a mounted ConfigMap's files atomically
 * (a symbolic link to a new folder), so each read sees either the old text or the new one in full.
 *
 * The file in effect is always the file as it is: an edit that breaks it makes every call fail with the reason, as a
 * broken file does at start, rather than leave an older table running that nobody can see in the cluster.
 */
export class FollowedFile<T> {
  private text: string | undefined;
  private readError: string | undefined;
  private state!: T | ConfigurationError;
  private checkedAt: number;

  constructor(
    /** The variable that names the file, and what the file is, for messages. */
    private readonly source: { readonly env: string; readonly file: string; readonly what: string },
    private readonly load: (text: string) => T,
    private readonly log: Logger,
    private readonly now: () => number,
  ) {
    this.checkedAt = now();
    this.read(true);
  }

  /** What the file holds now, read again when RECHECK_MS have passed; throws the file's problem when it has one. */
  current(): T {
    const at = this.now();
    if (at - this.checkedAt >= RECHECK_MS) {
      this.checkedAt = at;
      this.read(false);
    }
    if (this.state instanceof ConfigurationError) throw this.state;
    return this.state;
  }

  private read(first: boolean): void {
    let text: string | undefined;
    let readError: string | undefined;
    try {
      text = readFileSync(this.source.file, 'utf8');
    } catch (error) {
      readError = (error as Error).message;
    }
    if (!first && text === this.text && readError === this.readError) return;
    this.text = text;
    this.readError = readError;
    this.state = text === undefined ? new ConfigurationError([`${this.source.env}: cannot read ${this.source.what} at ${this.source.file}: ${readError}`]) : this.attempt(text);
    if (this.state instanceof ConfigurationError) {
      this.log.error(`${this.source.what} is unusable: every call will fail until it is fixed (it is read again when it changes)`, {
        file: this.source.file,
        error: this.state.message,
      });
    } else if (!first) {
      this.log.info(`${this.source.what} changed: the new one is in effect`, { file: this.source.file });
    }
  }

  private attempt(text: string): T | ConfigurationError {
    try {
      return this.load(text);
    } catch (error) {
      if (error instanceof ConfigurationError) return error;
      throw error;
    }
  }
}

/**
 * The forwarder's optional notifier: once the actions have answered and the answer to Falcosidekick is on its way, a
 * summary of what each action did is POSTed to a webhook (Slack's incoming webhooks, or any receiver of plain JSON).
 * It never delays or changes that answer: summaries wait in a bounded queue and go out from a later turn of the event
 * loop, a few at a time, each with its own timeout and never sent twice; a full queue drops the newest, counted.
 */
import { isRight } from 'fp-ts/Either';
import { describeValue, firstExpected } from '../decode';
import { ConfigurationError, listText, param, readParams, textCodec } from '../params';
import { clipped as logClipped, CountedLine, type Logger } from '../log';
import { REFUSALS_LOG_INTERVAL_MS } from '../admission';
import { clipped, printable } from '../text';
import { ActionCaller, type CallAnswer } from './invoke';
import type { ActionReport } from './outcome';

/** The optional Secret that turns the notifier on; the generated manifests read its keys into these variables. */
export const NOTIFIER_SECRET_NAME = 'falco-response-notifier';
export const NOTIFY_URL_ENV = 'NOTIFY_URL';
export const NOTIFY_FORMAT_ENV = 'NOTIFY_FORMAT';
export const NOTIFY_ON_ENV = 'NOTIFY_ON';

/** Each variable and the key of the Secret it comes from (build/model.ts wires them, optional). */
export const NOTIFIER_SECRET_KEYS = [
  { env: NOTIFY_URL_ENV, key: 'url', description: 'the webhook URL (http:// or https://); no key, no notifier' },
  { env: NOTIFY_FORMAT_ENV, key: 'format', description: 'slack (the default) or json' },
  { env: NOTIFY_ON_ENV, key: 'notify-on', description: 'the action outcomes that make a summary: done, skipped, failed (default done,failed)' },
] as const;

export type NotifyFormat = 'slack' | 'json';
/** What an action's report counts as: done, skipped, or failed (failed, invalid, unauthorized, overloaded, not invoked). */
export type NotifyOn = 'done' | 'skipped' | 'failed';
const NOTIFY_ON_VALUES: readonly NotifyOn[] = ['done', 'skipped', 'failed'];

const formatText = textCodec<NotifyFormat>(
  (s) => {
    const v = s.trim().toLowerCase();
    return v === 'slack' || v === 'json' ? { value: v } : { expected: 'slack or json' };
  },
  (f) => f,
);
const ON_ITEMS = 'outcomes (done, skipped, failed)';
const onList = listText(ON_ITEMS, (item): item is NotifyOn => (NOTIFY_ON_VALUES as readonly string[]).includes(item));
const onText = textCodec<readonly NotifyOn[]>(
  (s) => {
    const r = onList.decode(s);
    if (isRight(r)) return r.right.length === 0 ? { expected: `a comma-separated list of ${ON_ITEMS}, at least one` } : { value: r.right };
    return { expected: firstExpected(r.left) ?? `a comma-separated list of ${ON_ITEMS}` };
  },
  onList.encode,
);

const notifierParams = {
  format: param(NOTIFY_FORMAT_ENV, formatText, 'slack', NOTIFIER_SECRET_KEYS[1].description),
  on: param(NOTIFY_ON_ENV, onText, 'done,failed', NOTIFIER_SECRET_KEYS[2].description),
};

export interface NotifierSettings {
  readonly url: URL;
  readonly format: NotifyFormat;
  readonly on: readonly NotifyOn[];
}

const FIX = `the forwarder refuses every call until the key url of the Secret ${NOTIFIER_SECRET_NAME} is fixed (or deleted: no notifier)`;

/** Whether a URL can be used, and if not why, without ever quoting it: its path often is the webhook's token. */
function urlProblem(raw: string): { url: URL } | { problem: string } {
  let end = raw.length;
  while (end > 0 && (raw[end - 1] === '\n' || raw[end - 1] === '\r')) end--;
  const text = raw.slice(0, end);
  if (text.trim() === '') return { problem: `${NOTIFY_URL_ENV} is set but ${raw === '' ? 'empty' : 'blank'}: ${FIX}` };
  // The URL parser would drop tabs and line breaks inside it silently: a URL other than the one written.
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  const bad = /[\u0000-\u0020\u007f-\u009f]/.exec(text);
  if (bad !== null) return { problem: `${NOTIFY_URL_ENV} holds a space or a control character (character ${bad.index + 1}): ${FIX}` };
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { problem: `${NOTIFY_URL_ENV} is not a URL (it does not parse; a webhook URL starts with https://): ${FIX}` };
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    return { problem: `${NOTIFY_URL_ENV} is not an http:// or https:// URL (its scheme is ${describeValue(url.protocol.slice(0, -1))}): ${FIX}` };
  }
  if (url.username !== '' || url.password !== '') {
    return {
      problem: `${NOTIFY_URL_ENV} holds credentials (user:password@ before the host), which would travel in every request's Authorization header and could reach a log: ${FIX}`,
    };
  }
  return { url };
}

/**
 * The notifier's settings from the environment: undefined when NOTIFY_URL is absent (no notifier) and nothing else
 * is set. Throws ConfigurationError, never quoting the URL, when the URL is unusable or the other settings are set
 * without it or wrong: the forwarder does not run half-configured.
 */
export function readNotifierSettings(env: Readonly<Record<string, string | undefined>>): NotifierSettings | undefined {
  const raw = env[NOTIFY_URL_ENV];
  const problems: string[] = [];
  let url: URL | undefined;
  if (raw === undefined) {
    const orphans = [NOTIFY_FORMAT_ENV, NOTIFY_ON_ENV].filter((name) => env[name] !== undefined);
    if (orphans.length === 0) return undefined;
    problems.push(
      `${orphans.join(' and ')} ${orphans.length === 1 ? 'is' : 'are'} set but ${NOTIFY_URL_ENV} is not: the notifier would be half-configured; ` +
        `put the webhook URL in the key url of the Secret ${NOTIFIER_SECRET_NAME}, or delete the other keys`,
    );
  } else {
    const checked = urlProblem(raw);
    if ('problem' in checked) problems.push(checked.problem);
    else url = checked.url;
  }
  let values: { format: NotifyFormat; on: readonly NotifyOn[] } | undefined;
  try {
    values = readParams(notifierParams, env);
  } catch (error) {
    if (!(error instanceof ConfigurationError)) throw error;
    problems.push(...error.problems);
  }
  if (problems.length > 0 || url === undefined || values === undefined) throw new ConfigurationError(problems);
  return { url, format: values.format, on: values.on };
}

/** The origin only: the path and query of a webhook URL are its secret (Slack's holds the token). */
export const shownUrl = (url: URL) => `${url.origin}/…`;

// What a summary holds. Every text in it may be the attacker's (the rule, the event-id header, a skip reason quoting
// the rule): each is cut short and made printable, and in Slack's format its control characters are escaped.

/** An alert's fields a summary names, as the forwarder decoded them. */
export interface AlertSummary {
  readonly eventId: string;
  readonly rule: string;
  readonly priority: string;
  readonly namespace: string | undefined;
}

export interface Summary {
  readonly alert: AlertSummary;
  /** The forwarder's outcome: done, or actions-failed. */
  readonly outcome: string;
  readonly results: readonly ActionReport[];
}

const MAX_RULE = 200;
const MAX_MESSAGE = 500;
const MAX_NAME = 253;
const TARGET_KEYS = ['resource', 'namespace', 'pod', 'node', 'name'] as const;
type TargetKey = (typeof TARGET_KEYS)[number];

const inert = (text: string, max: number) => printable(clipped(text, max));

/** An action's target as it answered it (lib/resolve.ts answerTarget), only the keys that shape has, or null. */
function targetOf(report: ActionReport): Partial<Record<TargetKey, string>> | null {
  const answer = report.answer;
  const target = typeof answer === 'object' && answer !== null ? (answer as Record<string, unknown>).target : undefined;
  if (typeof target !== 'object' || target === null) return null;
  const out: Partial<Record<TargetKey, string>> = {};
  for (const key of TARGET_KEYS) {
    const value = (target as Record<string, unknown>)[key];
    if (typeof value === 'string') out[key] = inert(value, MAX_NAME);
  }
  return Object.keys(out).length === 0 ? null : out;
}

/** Whether the action said it ran as a dry run; null when its answer does not say (a skip, a failure). */
function dryRunOf(report: ActionReport): boolean | null {
  const answer = report.answer;
  const value = typeof answer === 'object' && answer !== null ? (answer as Record<string, unknown>).dryRun : undefined;
  return typeof value === 'boolean' ? value : null;
}

/** What an action's report counts as for NOTIFY_ON. */
export function notifyClassOf(report: ActionReport): NotifyOn {
  return report.status === 'done' ? 'done' : report.status === 'skipped' ? 'skipped' : 'failed';
}

/** The plain JSON body: `{"source":"falco-response","eventId":…,"rule":…,"priority":…,"namespace":…,"outcome":…,"actions":[…]}`. */
export function jsonBody(summary: Summary): Record<string, unknown> {
  const { alert } = summary;
  return {
    source: 'falco-response',
    eventId: inert(alert.eventId, MAX_NAME),
    rule: inert(alert.rule, MAX_RULE),
    priority: alert.priority,
    namespace: alert.namespace ?? null,
    outcome: summary.outcome,
    actions: summary.results.map((r) => ({
      action: r.action,
      status: r.status,
      target: targetOf(r),
      message: inert(r.message, MAX_MESSAGE),
      dryRun: dryRunOf(r),
    })),
  };
}

/** Slack reads `&`, `<` and `>` as control characters in every text object (`<!channel>` pings, `<http://x|y>` links): escaped as Slack says. */
export function slackEscaped(text: string): string {
  return text.replace(/[&<>]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : '&gt;'));
}

/** The longest text of a Block Kit text object. */
const SLACK_TEXT_MAX = 3000;
/** The most blocks a message may hold: the alert's line and one per action, the rest said in the last. */
const SLACK_BLOCKS_MAX = 50;

/**
 * A `plain_text` text object: Slack documents it as unformatted (no mrkdwn: `*bold*`, `_it_`, `~strike~`, backticks,
 * `>` quotes stay characters; no link-ifying of URLs or channel names, no mentions: `verbatim` and that parsing belong
 * to mrkdwn), `emoji: false` keeps `:skull:` as typed. `&`, `<` and `>` escaped all the same, cut to Slack's limit
 * without splitting an escape or a surrogate pair.
 */
function plainText(line: string): { type: 'plain_text'; text: string; emoji: false } {
  const escaped = slackEscaped(line);
  // clipped() backs off a high surrogate (half a character is no Unicode text, which Slack may refuse); the pattern
  // backs off an escape cut short (`&am`).
  const text = escaped.length <= SLACK_TEXT_MAX ? escaped : `${clipped(escaped, SLACK_TEXT_MAX - 1, '').replace(/&[a-z]{0,3}$/, '')}…`;
  return { type: 'plain_text', text, emoji: false };
}

/** Slack's body (lib/router/notifier.ts slackBody). */
export interface SlackMessage {
  /** Our own words only (the notification's text, and all that a receiver of `{"text": …}` alone shows). */
  readonly text: string;
  readonly mrkdwn: false;
  readonly blocks: readonly { readonly type: 'section'; readonly text: ReturnType<typeof plainText> }[];
}

/**
 * Slack's body. Every text an attacker may have written (the rule, the event-id, the targets' names, the messages)
 * goes only into `plain_text` section blocks, one for the alert and one per action, e.g.
 * `falco-response: alert "Terminal shell in container" (Critical), event-id 6f1d…: 1 action(s)` then
 * `• label-pod done, namespace default pod kubecon: labelled the pod 'kubecon' in the namespace 'default'`.
 * The message's `text`, which Slack shows in notifications (and which a receiver of Slack's `{"text": …}` without
 * blocks shows alone), holds our own words only, with `mrkdwn: false`:
 * `falco-response: 1 action(s) for an alert of priority Critical: label-pod done`.
 */
export function slackBody(summary: Summary): SlackMessage {
  const body = jsonBody(summary);
  const actions = body.actions as { action: string; status: string; target: Partial<Record<TargetKey, string>> | null; message: string; dryRun: boolean | null }[];
  const lines = [
    `falco-response: alert "${body.rule as string}" (${summary.alert.priority}), event-id ${body.eventId as string}: ${actions.length} action(s)`,
    ...actions.map(
      (a) =>
        `• ${a.action} ${a.status}${a.dryRun === true ? ' (dry run)' : ''}` +
        `${a.target === null ? '' : `, ${Object.entries(a.target).map(([k, v]) => `${k} ${v}`).join(' ')}`}: ${a.message}`,
    ),
  ];
  const shown = lines.length <= SLACK_BLOCKS_MAX ? lines : [...lines.slice(0, SLACK_BLOCKS_MAX - 1), `… and ${lines.length - SLACK_BLOCKS_MAX + 1} more action(s): the forwarder's answer lists them`];
  const outcomes = summary.results.map((r) => `${r.action} ${notifyClassOf(r)}`).join(', ');
  return {
    text: `falco-response: ${summary.results.length} action(s) for an alert of priority ${summary.alert.priority}: ${outcomes}`,
    mrkdwn: false,
    blocks: shown.map((line) => ({ type: 'section', text: plainText(line) })),
  };
}

/** The notifier's bounds: not settings, so that no alert flood and no slow webhook can make them matter. */
export interface NotifierLimits {
  /** Summaries waiting to be sent; a full queue drops the newest. */
  readonly maxQueued: number;
  /** Summaries being sent at once. */
  readonly concurrency: number;
  /** The longest wait for the webhook's answer to one summary. */
  readonly timeoutMs: number;
}

export const NOTIFIER_LIMITS: NotifierLimits = { maxQueued: 100, concurrency: 2, timeoutMs: 5000 };

/** The notifier's counts since start, plain numbers (for the metrics): summaries sent, failed, dropped, waiting. */
export interface NotifierCounts {
  readonly sent: number;
  readonly failed: number;
  readonly dropped: number;
  readonly queued: number;
  readonly inFlight: number;
}

const MAX_ANSWER_SHOWN = 200;

/** One webhook, its queue and its counts: `notifier.notify(summary)` returns at once and never throws. */
export class Notifier {
  private readonly queue: Summary[] = [];
  private readonly caller: ActionCaller;
  private readonly dropLine: CountedLine;
  private active = 0;
  private scheduled = false;
  private sent = 0;
  private failed = 0;
  private dropped = 0;

  constructor(
    readonly settings: NotifierSettings,
    private readonly log: Logger,
    now: () => number = Date.now,
    private readonly limits: NotifierLimits = NOTIFIER_LIMITS,
  ) {
    this.caller = new ActionCaller(limits.concurrency, {
      secure: settings.url.protocol === 'https:',
      unknownHostHint: (url) => `no host ${url.hostname}: is the webhook URL right, and may the pod resolve names outside the cluster?`,
    });
    this.dropLine = new CountedLine(
      (dropped) =>
        log.warn(`summaries dropped: the notifier's queue is full (${limits.maxQueued} waiting, the webhook is slow or down)`, {
          dropped,
          webhook: shownUrl(settings.url),
        }),
      REFUSALS_LOG_INTERVAL_MS,
      now,
    );
  }

  get counts(): NotifierCounts {
    return { sent: this.sent, failed: this.failed, dropped: this.dropped, queued: this.queue.length, inFlight: this.active };
  }

  /** Queues a summary if one of its actions' outcomes is in NOTIFY_ON; sending starts on a later turn of the event loop. */
  notify(summary: Summary): void {
    if (!summary.results.some((r) => this.settings.on.includes(notifyClassOf(r)))) return;
    if (this.queue.length >= this.limits.maxQueued) {
      this.dropped++;
      this.dropLine.add();
      return;
    }
    this.queue.push(summary);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  /** Closes the kept-alive connections (tests, tools). */
  close(): void {
    this.caller.close();
  }

  private pump(): void {
    while (this.active < this.limits.concurrency && this.queue.length > 0) {
      const summary = this.queue.shift()!;
      this.active++;
      const next = () => {
        this.active--;
        this.pump();
      };
      // send() counts and logs every failure itself; a rejection could only be a bug, and must not stop the queue.
      this.send(summary).then(next, next);
    }
  }

  private async send(summary: Summary): Promise<void> {
    const { url, format } = this.settings;
    let answer: CallAnswer;
    try {
      const body = Buffer.from(JSON.stringify(format === 'slack' ? slackBody(summary) : jsonBody(summary)), 'utf8');
      answer = await this.caller.post({
        url,
        headers: { 'Content-Type': 'application/json', 'User-Agent': 'falco-response' },
        body,
        timeoutMs: this.limits.timeoutMs,
      });
    } catch (error) {
      answer = { kind: 'no-answer', error: `internal error: ${String(error)}` };
    }
    if (answer.kind === 'answered' && answer.httpStatus >= 200 && answer.httpStatus < 300) {
      this.sent++;
      return;
    }
    this.failed++;
    const why =
      answer.kind === 'no-answer'
        ? answer.error
        : `the webhook answered HTTP ${answer.httpStatus}${answer.body === '' ? '' : `: ${clipped(typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body), MAX_ANSWER_SHOWN)}`}`;
    this.log.error('the summary of an alert was not sent to the webhook', {
      eventId: logClipped(summary.alert.eventId),
      webhook: shownUrl(url),
      error: redacted(why, url),
      failed: this.failed,
    });
  }
}

/** An error text without the URL's secret part, should a library or a receiver quote it. */
function redacted(text: string, url: URL): string {
  const secret = `${url.pathname}${url.search}`;
  return secret.length > 1 ? text.split(secret).join('/…') : text;
}

import { strict as assert } from 'assert';
import { readdirSync, readFileSync } from 'fs';
import * as path from 'path';
import nock from 'nock';
import { parseAllDocuments } from 'yaml';
import forwarder from '../../functions/forwarder/router';
import { memoryLogger } from '../../lib/log';
import { forwarderHandler, type ForwarderHandler } from '../../lib/router/runner';
import { jsonBody, Notifier, readNotifierSettings, slackBody, type NotifierLimits, type Summary } from '../../lib/router/notifier';
import type { ActionReport } from '../../lib/router/outcome';
import { startStub, type HttpStub, type StubAnswer } from '../helpers/http-stub';
import { alert, FIXTURES, kubelessContext, kubelessEvent } from '../helpers/fixtures';
import { HOSTILE } from '../helpers/hostile';

const EVENT_ID = '6f1d3c9e-1b7a-4c2d-9e8f-0a1b2c3d4e5f';
const ROUTES = path.join(FIXTURES, 'routes', 'fan-out.json');
/** A webhook URL whose path is its secret, as Slack's is. */
const SECRET_PATH = '/services/T0000/B0000/XXXXsecretXXXX';

/** Reports as lib/router/runner.ts makes them from what the actions answered. */
const doneReport = (action: string, message: string, dryRun: boolean): ActionReport => ({
  action,
  routes: ['everything'],
  status: 'done',
  ok: true,
  httpStatus: 200,
  durationMs: 12,
  message,
  answer: { status: 'done', action, target: { namespace: 'default', pod: 'kubecon' }, dryRun, message },
});
const labelled = doneReport('label-pod', "labelled the pod 'kubecon' in the namespace 'default'", false);
const wouldDelete = doneReport('delete-pod', "dry run: would delete the pod 'kubecon' in the namespace 'default'", true);
const timedOut: ActionReport = {
  action: 'network-isolate',
  routes: ['everything'],
  status: 'failed',
  ok: false,
  httpStatus: null,
  durationMs: 1000,
  message: 'no answer within 1000 ms (CALL_TIMEOUT_SECONDS)',
};
const skipped = (reason: string): ActionReport => ({
  action: 'label-pod',
  routes: ['everything'],
  status: 'skipped',
  ok: true,
  httpStatus: 200,
  durationMs: 3,
  message: reason,
  answer: { status: 'skipped', code: 'rule-not-selected', reason },
});

const summary = (results: readonly ActionReport[], rule = 'Terminal shell in container', eventId = EVENT_ID): Summary => ({
  alert: { eventId, rule, priority: 'Critical', namespace: 'default' },
  outcome: results.every((r) => r.ok) ? 'done' : 'actions-failed',
  results,
});

const hostileRule = (file: string) => (JSON.parse(readFileSync(path.join(HOSTILE, file), 'utf8')) as { rule: string }).rule;

describe('notifier: the summary of what the actions did (lib/router/notifier.ts)', function () {
  describe('its bodies', () => {
    const plain = (text: string) => ({ type: 'section', text: { type: 'plain_text', text, emoji: false } });

    it('writes the Slack body exactly: our own words in text, a plain_text block for the alert and one per action with target, outcome, dry run and message', () => {
      assert.deepEqual(slackBody(summary([labelled, wouldDelete, timedOut])), {
        text: 'falco-response: 3 action(s) for an alert of priority Critical: label-pod done, delete-pod done, network-isolate failed',
        mrkdwn: false,
        blocks: [
          plain(`falco-response: alert "Terminal shell in container" (Critical), event-id ${EVENT_ID}: 3 action(s)`),
          plain("• label-pod done, namespace default pod kubecon: labelled the pod 'kubecon' in the namespace 'default'"),
          plain("• delete-pod done (dry run), namespace default pod kubecon: dry run: would delete the pod 'kubecon' in the namespace 'default'"),
          plain('• network-isolate failed: no answer within 1000 ms (CALL_TIMEOUT_SECONDS)'),
        ],
      });
    });

    it('keeps attacker markup inert: bare URLs, *bold*, _it_, ~strike~, backticks, quotes, @here, :emoji: and <!here> reach Slack only in plain_text, never in the mrkdwn-capable text', () => {
      // Given: a rule, an event-id, a target name and a message written to render as markup in mrkdwn
      const markup = '*bold* _it_ ~strike~ `code` ```block``` > quote https://evil.example/login @here @channel :skull: <!here> <#C024BE7LR> <@U024BE7LH>';
      const withMarkup: ActionReport = { ...labelled, message: markup, answer: { status: 'done', target: { namespace: 'default', pod: `pod ${markup}` }, dryRun: false } };

      // When
      const body = slackBody(summary([withMarkup, skipped(`the rule ${markup}`)], markup, `event ${markup}`));

      // Then: the top-level text, rendered as mrkdwn where mrkdwn is on, holds none of it, and mrkdwn is off anyway
      assert.equal(body.mrkdwn, false);
      assert.equal(body.text, 'falco-response: 2 action(s) for an alert of priority Critical: label-pod done, label-pod skipped');
      for (const part of ['*', '_', '~', '`', 'https://', '@', ':skull:', '<', '&']) assert.ok(!body.text.includes(part), `the text holds ${part}`);
      // And: every block is a plain_text section, emoji off, within Slack's limit, with no raw < or > (escaped as Slack asks)
      assert.equal(body.blocks.length, 3);
      for (const block of body.blocks) {
        assert.deepEqual([block.type, block.text.type, block.text.emoji], ['section', 'plain_text', false]);
        assert.ok(block.text.text.length <= 3000);
        assert.doesNotMatch(block.text.text, /[<>]/);
      }
      const escaped = markup.replace(/</g, '&lt;').replace(/>/g, '&gt;');
      assert.equal(body.blocks[0].text.text, `falco-response: alert "${escaped}" (Critical), event-id event ${escaped}: 2 action(s)`);
      assert.equal(body.blocks[1].text.text, `• label-pod done, namespace default pod pod ${escaped}: ${escaped}`);
      // And: no field of the message turns mrkdwn on or asks for names to be linked
      assert.deepEqual(Object.keys(body).sort(), ['blocks', 'mrkdwn', 'text']);
    });

    it('cuts a block at 3000 characters (Slack\'s limit) without splitting an escape', () => {
      const wide: ActionReport = { ...labelled, message: '<'.repeat(500), answer: { status: 'done', target: { resource: 'secrets', namespace: '&'.repeat(253), name: '&'.repeat(253) }, dryRun: false } };
      const [, line] = slackBody(summary([wide])).blocks;
      assert.ok(line.text.text.length <= 3000, String(line.text.text.length));
      assert.match(line.text.text, /(&amp;|&lt;)…$/);
    });

    it('cuts a block at 3000 characters without splitting a surrogate pair (a lone surrogate is no Unicode text: Slack may refuse the body)', () => {
      // An emoji (two UTF-16 units) straddles the cut at 2999 for one of the two paddings.
      for (const pad of [0, 1]) {
        const wide: ActionReport = { ...labelled, message: `${'x'.repeat(pad)}${'\u{1F600}'.repeat(249)}`, answer: { status: 'done', target: { resource: 'secrets', namespace: '&'.repeat(253), name: '&'.repeat(253) }, dryRun: false } };
        const [, line] = slackBody(summary([wide])).blocks;
        assert.ok(line.text.text.length <= 3000, String(line.text.text.length));
        assert.doesNotMatch(line.text.text, /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/, `padding ${pad}: a lone surrogate at the cut: ${JSON.stringify(line.text.text.slice(-3))}`);
      }
    });

    it('writes the plain JSON body exactly, with nothing of the alert but its event-id, rule, priority and namespace', () => {
      assert.deepEqual(jsonBody(summary([labelled, wouldDelete, timedOut])), {
        source: 'falco-response',
        eventId: EVENT_ID,
        rule: 'Terminal shell in container',
        priority: 'Critical',
        namespace: 'default',
        outcome: 'actions-failed',
        actions: [
          { action: 'label-pod', status: 'done', target: { namespace: 'default', pod: 'kubecon' }, message: "labelled the pod 'kubecon' in the namespace 'default'", dryRun: false },
          { action: 'delete-pod', status: 'done', target: { namespace: 'default', pod: 'kubecon' }, message: "dry run: would delete the pod 'kubecon' in the namespace 'default'", dryRun: true },
          { action: 'network-isolate', status: 'failed', target: null, message: 'no answer within 1000 ms (CALL_TIMEOUT_SECONDS)', dryRun: null },
        ],
      });
    });

    it('escapes the Slack markup of a hostile rule (test/fixtures/hostile/rule-slack-markup.json) in the rule and in a reason quoting it: nothing pings or links', () => {
      // Given: the rule as the attacker wrote it, and the skip reason an action answers for it
      const rule = hostileRule('rule-slack-markup.json');
      const reason = `the rule ${JSON.stringify(rule)} is not one this action answers (RULES)`;

      // When
      const body = slackBody(summary([skipped(reason)], rule, '<!here>'));
      const text = body.blocks.map((b) => b.text.text).join('\n');

      // Then
      const escaped = '&lt;!channel&gt; &lt;http://evil.example/|click here&gt; &amp;amp; &lt;@U024BE7LH&gt; *urgent*';
      assert.equal(
        text,
        `falco-response: alert "${escaped}" (Critical), event-id &lt;!here&gt;: 1 action(s)\n` +
          `• label-pod skipped: the rule "${escaped}" is not one this action answers (RULES)`,
      );
      assert.doesNotMatch(text, /[<>]/);
      assert.equal(body.text, 'falco-response: 1 action(s) for an alert of priority Critical: label-pod skipped');
      // The JSON body is read by programs, not rendered as mrkdwn: the same text, unescaped.
      assert.equal(jsonBody(summary([skipped(reason)], rule)).rule, rule);
    });

    it('makes control, bidi and surrogate characters of a rule (hostile/rule-controls.json) printable, and keeps every line one line', () => {
      const rule = hostileRule('rule-controls.json');
      const { blocks } = slackBody(summary([timedOut], rule));
      assert.equal(
        blocks[0].text.text,
        'falco-response: alert "Shell \\u001b[2J\\u000d\\u000a\\u0000 \\u009b31m \\u202eexe.txt \\u2066x\\u2069 \\ud800 end" (Critical), ' +
          `event-id ${EVENT_ID}: 1 action(s)`,
      );
      assert.deepEqual(blocks.map((b) => b.text.text.includes('\n')), [false, false]);
      assert.equal(jsonBody(summary([timedOut], rule)).rule, 'Shell \\u001b[2J\\u000d\\u000a\\u0000 \\u009b31m \\u202eexe.txt \\u2066x\\u2069 \\ud800 end');
    });

    it('cuts a long rule at 200 characters and a long message at 500, saying so', () => {
      const long = skipped('x'.repeat(100000));
      const body = jsonBody(summary([long], 'r'.repeat(5000)));
      assert.equal(body.rule, `${'r'.repeat(200)}… (5000 characters)`);
      assert.equal((body.actions as { message: string }[])[0].message, `${'x'.repeat(500)}… (100000 characters)`);
      assert.ok(slackBody(summary([long], 'r'.repeat(5000))).blocks.every((b) => b.text.text.length < 1000));
    });
  });

  describe('its settings, checked at start', () => {
    const refused = (env: Record<string, string>) => {
      const log = memoryLogger();
      const handler = forwarderHandler(forwarder, { env: { ROUTES_FILE: ROUTES, ...env }, log });
      assert.ok(handler.ready instanceof Error, 'the forwarder started');
      const lines = log.lines.filter((l) => l.message === 'the function cannot start: every call will fail until the configuration is fixed');
      assert.equal(lines.length, 1);
      assert.equal(lines[0].level, 'error');
      // Never the URL's secret part, whatever is wrong with it.
      assert.doesNotMatch(JSON.stringify(log.lines), /XXXXsecretXXXX/);
      return handler.ready.message;
    };
    const FIX = 'the forwarder refuses every call until the key url of the Secret falco-response-notifier is fixed (or deleted: no notifier)';

    it('refuses a URL that is not http(s), holds credentials, does not parse, is empty or holds a space, with the exact reason and never the URL', () => {
      assert.equal(
        refused({ NOTIFY_URL: `ftp://hooks.example${SECRET_PATH}` }),
        `invalid configuration: NOTIFY_URL is not an http:// or https:// URL (its scheme is "ftp"): ${FIX}`,
      );
      assert.equal(
        refused({ NOTIFY_URL: `https://user:XXXXsecretXXXX@hooks.example/x` }),
        `invalid configuration: NOTIFY_URL holds credentials (user:password@ before the host), which would travel in every request's Authorization header and could reach a log: ${FIX}`,
      );
      assert.equal(
        refused({ NOTIFY_URL: `hooks.example${SECRET_PATH}` }),
        `invalid configuration: NOTIFY_URL is not a URL (it does not parse; a webhook URL starts with https://): ${FIX}`,
      );
      assert.equal(refused({ NOTIFY_URL: '' }), `invalid configuration: NOTIFY_URL is set but empty: ${FIX}`);
      assert.equal(
        refused({ NOTIFY_URL: `https://hooks.example${SECRET_PATH}\tx` }),
        `invalid configuration: NOTIFY_URL holds a space or a control character (character 58): ${FIX}`,
      );
    });

    it('refuses a format or outcome list that is wrong, or set without a URL: never half-configured', () => {
      const url = `https://hooks.example${SECRET_PATH}`;
      assert.equal(refused({ NOTIFY_URL: url, NOTIFY_FORMAT: 'xml' }), 'invalid configuration: NOTIFY_FORMAT: expected slack or json, got "xml"');
      assert.equal(
        refused({ NOTIFY_URL: url, NOTIFY_ON: 'done,everything' }),
        'invalid configuration: NOTIFY_ON: expected a comma-separated list of outcomes (done, skipped, failed) ("everything" is not one), got "done,everything"',
      );
      assert.equal(
        refused({ NOTIFY_URL: url, NOTIFY_ON: ' , ' }),
        'invalid configuration: NOTIFY_ON: expected a comma-separated list of outcomes (done, skipped, failed), at least one, got " , "',
      );
      assert.equal(
        refused({ NOTIFY_FORMAT: 'json' }),
        'invalid configuration: NOTIFY_FORMAT is set but NOTIFY_URL is not: the notifier would be half-configured; put the webhook URL in the key url of the Secret falco-response-notifier, or delete the other keys',
      );
    });

    it('reads a good URL (a trailing line break of --from-file dropped) with its defaults, and nothing at all as no notifier', () => {
      const settings = readNotifierSettings({ NOTIFY_URL: `https://hooks.example${SECRET_PATH}\n` })!;
      assert.deepEqual([settings.url.href, settings.format, settings.on], [`https://hooks.example${SECRET_PATH}`, 'slack', ['done', 'failed']]);
      assert.equal(readNotifierSettings({}), undefined);
      const handler = forwarderHandler(forwarder, { env: { ROUTES_FILE: ROUTES }, log: memoryLogger() });
      assert.equal(handler.notifications(), undefined);
      handler.close();
    });
  });

  describe('its wiring in the generated manifests (refreshed by `npm run build`, checked by build.test.ts)', () => {
    const MANIFESTS = path.join(__dirname, '..', '..', 'manifests');
    const containerEnv = (file: string): { name: string; valueFrom?: { secretKeyRef?: unknown } }[] => {
      const objects = parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS() as Record<string, any>);
      const pod = objects.find((o) => o.kind === 'Function')?.spec.deployment.spec.template.spec ?? objects.find((o) => o.kind === 'Deployment')?.spec.template.spec;
      return pod === undefined ? [] : pod.containers[0].env;
    };

    it("gives the forwarder, and only it, the keys of the optional Secret falco-response-notifier, in both targets", () => {
      for (const target of ['kubeless', 'standalone']) {
        const files = readdirSync(path.join(MANIFESTS, target)).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
        assert.ok(files.includes('forwarder.yaml') && files.includes('delete-pod.yaml'), files.join(', '));
        for (const file of files) {
          const refs = containerEnv(path.join(MANIFESTS, target, file))
            .filter((e) => e.name.startsWith('NOTIFY_'))
            .map((e) => [e.name, e.valueFrom?.secretKeyRef]);
          assert.deepEqual(
            refs,
            file === 'forwarder.yaml'
              ? [
                  ['NOTIFY_URL', { name: 'falco-response-notifier', key: 'url', optional: true }],
                  ['NOTIFY_FORMAT', { name: 'falco-response-notifier', key: 'format', optional: true }],
                  ['NOTIFY_ON', { name: 'falco-response-notifier', key: 'notify-on', optional: true }],
                ]
              : [],
            `${target}/${file}`,
          );
        }
      }
    });
  });

  describe('sending, on 127.0.0.1', function () {
    this.timeout(10000);
    let stubs: HttpStub[] = [];
    let closers: { close(): void }[] = [];

    before(() => nock.enableNetConnect('127.0.0.1'));
    after(() => nock.disableNetConnect());
    afterEach(async () => {
      closers.forEach((c) => c.close());
      await Promise.all(stubs.map((s) => s.close()));
      stubs = [];
      closers = [];
    });

    async function stub(answer: () => StubAnswer): Promise<HttpStub> {
      const s = await startStub(answer);
      stubs.push(s);
      return s;
    }
    const webhookOf = (s: HttpStub) => `${s.url.replace(/\/$/, '')}${SECRET_PATH}`;
    const until = async (what: string, ready: () => boolean) => {
      const started = Date.now();
      while (!ready()) {
        if (Date.now() - started > 5000) throw new Error(`still waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    };

    /** The three actions, answering as lib/runner.ts does. */
    async function actions(): Promise<string> {
      const answers: Record<string, StubAnswer> = {
        'label-pod': { status: 200, body: labelled.answer },
        'network-isolate': { status: 200, body: { ...(labelled.answer as object), action: 'network-isolate', message: 'isolated' } },
        'delete-pod': { status: 200, body: wouldDelete.answer },
      };
      const entries = await Promise.all(Object.entries(answers).map(async ([name, answer]) => [name, (await stub(() => answer)).url]));
      return JSON.stringify(Object.fromEntries(entries));
    }

    function forwarderWith(env: Record<string, string>, notifierLimits?: NotifierLimits): { handler: ForwarderHandler; log: ReturnType<typeof memoryLogger> } {
      const log = memoryLogger();
      const handler = forwarderHandler(forwarder, { env: { ROUTES_FILE: ROUTES, ...env }, log, ...(notifierLimits === undefined ? {} : { notifierLimits }) });
      if (handler.ready instanceof Error) assert.fail(handler.ready.message);
      closers.push(handler);
      return { handler, log };
    }

    const withoutDurations = (answer: Record<string, unknown>) => ({ ...answer, results: (answer.results as object[]).map((r) => ({ ...r, durationMs: 0 })) });

    it('answers Falcosidekick exactly as without a notifier, before the summary is even sent, while the webhook never answers', async () => {
      // Given: the same actions behind a forwarder without a notifier and one whose webhook never answers
      const endpoints = await actions();
      const silent = await stub(() => ({ status: 200, body: 'ok', delayMs: 60000 }));
      const plain = forwarderWith({ ACTION_ENDPOINTS: endpoints });
      const notifying = forwarderWith({ ACTION_ENDPOINTS: endpoints, NOTIFY_URL: webhookOf(silent) }, { maxQueued: 10, concurrency: 1, timeoutMs: 300 });

      // When
      const without = kubelessEvent(alert('terminal-shell'), EVENT_ID);
      const expected = await plain.handler(without.event, kubelessContext(3));
      const withIt = kubelessEvent(alert('terminal-shell'), EVENT_ID);
      const answer = await notifying.handler(withIt.event, kubelessContext(3));
      const receivedAtAnswer = silent.received.length;

      // Then: the same answer and status, given before the webhook saw anything
      assert.deepEqual(withoutDurations(answer), withoutDurations(expected));
      assert.equal(withIt.response.statusCode, without.response.statusCode);
      assert.equal(receivedAtAnswer, 0);
      // and the summary goes out afterwards, and its timeout is counted and logged
      await until('the summary', () => silent.received.length === 1);
      await until('the timeout', () => notifying.handler.notifications()!.failed === 1);
      assert.deepEqual(notifying.handler.notifications(), { sent: 0, failed: 1, dropped: 0, queued: 0, inFlight: 0 });
      const failure = notifying.log.lines.find((l) => l.message === 'the summary of an alert was not sent to the webhook')!;
      assert.deepEqual(
        { ...failure, time: undefined },
        { time: undefined, level: 'error', message: 'the summary of an alert was not sent to the webhook', eventId: EVENT_ID, webhook: `${silent.url}…`, error: 'no answer within 300 ms', failed: 1 },
      );
    });

    it('POSTs one Slack body per alert, the JSON of exactly what the actions answered', async () => {
      const receiver = await stub(() => ({ status: 200, body: 'ok' }));
      const { handler, log } = forwarderWith({ ACTION_ENDPOINTS: await actions(), NOTIFY_URL: webhookOf(receiver) });

      await handler(kubelessEvent(alert('terminal-shell'), EVENT_ID).event, kubelessContext(3));
      await until('the summary', () => handler.notifications()!.sent === 1);

      assert.equal(receiver.received.length, 1);
      const [request] = receiver.received;
      assert.deepEqual([request.method, request.url, request.headers['content-type'], request.headers['user-agent']], ['POST', SECRET_PATH, 'application/json', 'falco-response']);
      const plain = (text: string) => ({ type: 'section', text: { type: 'plain_text', text, emoji: false } });
      assert.deepEqual(JSON.parse(request.body.toString('utf8')), {
        text: 'falco-response: 3 action(s) for an alert of priority Critical: label-pod done, network-isolate done, delete-pod done',
        mrkdwn: false,
        blocks: [
          plain(`falco-response: alert "Terminal shell in container" (Critical), event-id ${EVENT_ID}: 3 action(s)`),
          plain("• label-pod done, namespace default pod kubecon: labelled the pod 'kubecon' in the namespace 'default'"),
          plain('• network-isolate done, namespace default pod kubecon: isolated'),
          plain("• delete-pod done (dry run), namespace default pod kubecon: dry run: would delete the pod 'kubecon' in the namespace 'default'"),
        ],
      });
      assert.deepEqual(handler.notifications(), { sent: 1, failed: 0, dropped: 0, queued: 0, inFlight: 0 });
      assert.doesNotMatch(JSON.stringify(log.lines), /XXXXsecretXXXX/);
    });

    it('sends nothing for an alert whose actions all skipped (NOTIFY_ON done,failed by default), and sends it with NOTIFY_ON=skipped', async () => {
      const receiver = await stub(() => ({ status: 204, body: '' }));
      const skipping = await stub(() => ({ status: 200, body: skipped('not selected').answer }));
      const endpoints = JSON.stringify({ 'label-pod': skipping.url, 'network-isolate': skipping.url, 'delete-pod': skipping.url });
      const byDefault = forwarderWith({ ACTION_ENDPOINTS: endpoints, NOTIFY_URL: webhookOf(receiver), NOTIFY_FORMAT: 'json' });
      const onSkips = forwarderWith({ ACTION_ENDPOINTS: endpoints, NOTIFY_URL: webhookOf(receiver), NOTIFY_FORMAT: 'json', NOTIFY_ON: 'skipped' });

      await byDefault.handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext(3));
      await onSkips.handler(kubelessEvent(alert('terminal-shell')).event, kubelessContext(3));
      await until('the summary', () => onSkips.handler.notifications()!.sent === 1);
      await new Promise((resolve) => setTimeout(resolve, 100));

      assert.equal(receiver.received.length, 1);
      assert.deepEqual(
        (JSON.parse(receiver.received[0].body.toString('utf8')) as { actions: { status: string }[] }).actions.map((a) => a.status),
        ['skipped', 'skipped', 'skipped'],
      );
      assert.deepEqual(byDefault.handler.notifications(), { sent: 0, failed: 0, dropped: 0, queued: 0, inFlight: 0 });
    });

    it('counts and logs a webhook that refuses (HTTP 500) or cannot be reached, quoting what it said, never its path', async () => {
      // Given
      const refusing = await stub(() => ({ status: 500, body: `invalid_payload ${SECRET_PATH}` }));
      const closed = await stub(() => ({ status: 200, body: 'ok' }));
      const closedUrl = webhookOf(closed);
      await closed.close();
      stubs = stubs.filter((s) => s !== closed);
      const log = memoryLogger();
      const notifiers = [webhookOf(refusing), closedUrl].map((url) => new Notifier(readNotifierSettings({ NOTIFY_URL: url })!, log));
      closers.push(...notifiers);

      // When
      notifiers.forEach((n) => n.notify(summary([timedOut])));
      await until('both failures', () => notifiers.every((n) => n.counts.failed === 1));

      // Then
      const errors = log.lines.filter((l) => l.message === 'the summary of an alert was not sent to the webhook').map((l) => [l.webhook, l.error, l.failed]);
      assert.equal(errors.length, 2);
      assert.deepEqual(errors.find((e) => e[0] === `${refusing.url}…`), [`${refusing.url}…`, 'the webhook answered HTTP 500: invalid_payload /…', 1]);
      const unreachable = errors.find((e) => e[0] !== `${refusing.url}…`)!;
      assert.match(unreachable[1] as string, /^connect ECONNREFUSED 127\.0\.0\.1:\d+$/);
      assert.doesNotMatch(JSON.stringify(log.lines), /XXXXsecretXXXX/);
    });

    it('holds at most maxQueued summaries, sends at most `concurrency` at once, and drops the rest with a counted line a second', async () => {
      // Given: a webhook that never answers, one summary in flight at most, two waiting
      const silent = await stub(() => ({ status: 200, body: 'ok', delayMs: 60000 }));
      const log = memoryLogger();
      const notifier = new Notifier(readNotifierSettings({ NOTIFY_URL: webhookOf(silent) })!, log, Date.now, { maxQueued: 2, concurrency: 1, timeoutMs: 60000 });
      closers.push(notifier);

      // When: five alerts at once, then two more once the first is in flight
      for (let i = 0; i < 5; i++) notifier.notify(summary([timedOut], 'r', `event-${i}`));
      await until('the first summary', () => silent.received.length === 1);
      for (let i = 5; i < 7; i++) notifier.notify(summary([timedOut], 'r', `event-${i}`));

      // Then
      assert.deepEqual(notifier.counts, { sent: 0, failed: 0, dropped: 4, queued: 2, inFlight: 1 });
      const drops = () => log.lines.filter((l) => l.message === "summaries dropped: the notifier's queue is full (2 waiting, the webhook is slow or down)");
      assert.deepEqual(drops().map((l) => l.dropped), [1]);
      await until('the counted line', () => drops().length === 2);
      assert.deepEqual(drops().map((l) => [l.level, l.dropped, l.webhook]), [['warn', 1, `${silent.url}…`], ['warn', 3, `${silent.url}…`]]);
      assert.equal(silent.received.length, 1);
      assert.equal(silent.inFlight().max, 1);
    });
  });
});
